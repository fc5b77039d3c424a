//! `berth run IMAGE [-p HOST:CONTAINER] [-e K=V] [--cpu] [--memory] [-- CMD...]`: like
//! `docker run -d`, with ECS calls underneath — RegisterTaskDefinition of a one-container
//! family (named `--name`, else after the image), then RunTask — and the task followed until
//! it runs (exit 0, with where to reach its ports) or stops (exit 1, with why). With
//! `--output json`, stdout is only the tasks as DescribeTasks gives them, one JSON array, once
//! they run or stopped (why one stopped goes to stderr too).

use super::api::{ecs, short, ApiArgs, Output};
use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use std::io::Write;
use std::time::{Duration, Instant};

/// `berth run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The image to run.
    pub image: String,
    /// The command (after `--`).
    #[arg(last = true)]
    pub command: Vec<String>,
    /// The family (and container) name; by default the image's name.
    #[arg(long)]
    pub name: Option<String>,
    /// A port: CONTAINER, HOST:CONTAINER, with /udp for UDP; repeatable.
    #[arg(short = 'p', long = "publish")]
    pub ports: Vec<String>,
    /// An environment variable, K=V; repeatable.
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// CPU units (1,024 per core) the container reserves.
    #[arg(long)]
    pub cpu: Option<u32>,
    /// Memory in MiB: the container's hard limit (by default it reserves 128 MiB, no limit).
    #[arg(long)]
    pub memory: Option<u32>,
    /// How many tasks.
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Print the task ARNs (with `--output json`, RunTask's tasks) and return at once.
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long, default_value = "default")]
    pub cluster: String,
    /// `text`: each task's status changes and ports; or `json`: the tasks as DescribeTasks
    /// gives them (`lastStatus`, `containers` with their `networkBindings`, ...), one JSON
    /// array, printed once they run or stopped.
    #[arg(long, value_enum, default_value = "text")]
    pub output: Output,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// A family name made of an image reference: `registry:5000/team/web:1.2` → `web`.
pub fn family_of(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    let name = last.split(['@', ':']).next().unwrap_or(last);
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(255)
        .collect();
    if cleaned.is_empty() {
        "berth-run".into()
    } else {
        cleaned
    }
}

/// A `-p` spec as an ECS port mapping.
pub fn port_mapping(spec: &str) -> anyhow::Result<Value> {
    let (ports, protocol) = match spec.split_once('/') {
        Some((ports, protocol @ ("tcp" | "udp"))) => (ports, protocol),
        Some((_, other)) => bail!("-p {spec}: the protocol is tcp or udp, not '{other}'"),
        None => (spec, "tcp"),
    };
    let number = |text: &str| -> anyhow::Result<u16> {
        text.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .with_context(|| format!("-p {spec}: '{text}' is not a port (1 to 65535)"))
    };
    let (host, container) = match ports.split_once(':') {
        Some((host, container)) => (Some(number(host)?), number(container)?),
        None => (None, number(ports)?),
    };
    let mut mapping = json!({"containerPort": container, "protocol": protocol});
    if let Some(host) = host {
        mapping["hostPort"] = host.into();
    }
    Ok(mapping)
}

/// The container definition `berth run` registers.
pub fn container_definition(args: &RunArgs, name: &str) -> anyhow::Result<Value> {
    let mut def = json!({"name": name, "image": args.image, "essential": true});
    match args.memory {
        Some(memory) => def["memory"] = memory.into(),
        None => def["memoryReservation"] = 128.into(),
    }
    if let Some(cpu) = args.cpu {
        def["cpu"] = cpu.into();
    }
    if !args.command.is_empty() {
        def["command"] = args.command.clone().into();
    }
    let ports: Vec<Value> = args
        .ports
        .iter()
        .map(|p| port_mapping(p))
        .collect::<anyhow::Result<_>>()?;
    if !ports.is_empty() {
        def["portMappings"] = ports.into();
    }
    let mut environment = Vec::new();
    for pair in &args.env {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("-e {pair}: write it as NAME=VALUE");
        };
        environment.push(json!({"name": key, "value": value}));
    }
    if !environment.is_empty() {
        def["environment"] = environment.into();
    }
    Ok(def)
}

pub async fn run(args: RunArgs) -> anyhow::Result<i32> {
    let name = args.name.clone().unwrap_or_else(|| family_of(&args.image));
    let client = args.api.client()?;
    let def = container_definition(&args, &name)?;
    let registered = ecs(
        &client,
        "RegisterTaskDefinition",
        json!({"family": name, "containerDefinitions": [def]}),
    )
    .await?;
    let definition = registered["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .context("RegisterTaskDefinition answered no ARN")?
        .to_string();
    let out = ecs(
        &client,
        "RunTask",
        json!({"cluster": args.cluster, "taskDefinition": definition, "count": args.count}),
    )
    .await?;
    let arns: Vec<String> = out["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["taskArn"].as_str().map(str::to_string))
        .collect();
    for failure in out["failures"].as_array().into_iter().flatten() {
        eprintln!(
            "not placed: {}{}",
            failure["reason"].as_str().unwrap_or("?"),
            failure["detail"]
                .as_str()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default()
        );
    }
    if arns.is_empty() {
        bail!(
            "no task was placed: does cluster '{}' have an instance with room (`berth instances`)?",
            args.cluster
        );
    }
    if args.detach {
        if args.output.is_json() {
            let tasks = out["tasks"].as_array().cloned().unwrap_or_default();
            println!("{}", serde_json::to_string_pretty(&tasks)?);
        } else {
            for arn in &arns {
                println!("{arn}");
            }
        }
        return Ok(0);
    }
    wait_running(&client, &args.cluster, &arns, args.output).await
}

/// Why `task` (as DescribeTasks gives it) stopped: its `stoppedReason`, and its containers'
/// reasons in brackets.
pub fn stopped_reason(task: &Value) -> String {
    let reasons: Vec<&str> = task["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["reason"].as_str())
        .collect();
    format!(
        "{}{}",
        task["stoppedReason"].as_str().unwrap_or("-"),
        if reasons.is_empty() {
            String::new()
        } else {
            format!(" ({})", reasons.join("; "))
        }
    )
}

/// Follows `arns` until each runs or stops; prints each status change, or with JSON output
/// the tasks at the end.
async fn wait_running(
    client: &berth_agent::client::ServerClient,
    cluster: &str,
    arns: &[String],
    output: Output,
) -> anyhow::Result<i32> {
    let mut last: Vec<String> = vec![String::new(); arns.len()];
    let began = Instant::now();
    let mut stdout = std::io::stdout();
    loop {
        let out = ecs(
            client,
            "DescribeTasks",
            json!({"cluster": cluster, "tasks": arns}),
        )
        .await?;
        let tasks = out["tasks"].as_array().cloned().unwrap_or_default();
        let mut done = 0;
        let mut failed = false;
        for (i, arn) in arns.iter().enumerate() {
            let Some(task) = tasks.iter().find(|t| t["taskArn"] == arn.as_str()) else {
                continue;
            };
            let status = task["lastStatus"].as_str().unwrap_or("-").to_string();
            if status != last[i] && output.is_json() {
                if status == "STOPPED" {
                    eprintln!("{}  stopped: {}", short(arn), stopped_reason(task));
                }
                last[i] = status.clone();
            } else if status != last[i] {
                writeln!(stdout, "{}  {status}", short(arn))?;
                last[i] = status.clone();
                if status == "RUNNING" {
                    for binding in task["containers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .flat_map(|c| c["networkBindings"].as_array().cloned().unwrap_or_default())
                    {
                        writeln!(
                            stdout,
                            "{}  container port {}/{} at {}:{}",
                            short(arn),
                            binding["containerPort"],
                            binding["protocol"].as_str().unwrap_or("tcp"),
                            binding["bindIP"].as_str().unwrap_or("0.0.0.0"),
                            binding["hostPort"]
                        )?;
                    }
                }
                if status == "STOPPED" {
                    writeln!(stdout, "{}  stopped: {}", short(arn), stopped_reason(task))?;
                }
            }
            match status.as_str() {
                "RUNNING" => done += 1,
                "STOPPED" => {
                    done += 1;
                    failed = true;
                }
                _ => {}
            }
        }
        stdout.flush()?;
        if done == arns.len() {
            if output.is_json() {
                // In the order they were started, as DescribeTasks was asked.
                let described: Vec<&Value> = arns
                    .iter()
                    .filter_map(|arn| tasks.iter().find(|t| t["taskArn"] == arn.as_str()))
                    .collect();
                writeln!(stdout, "{}", serde_json::to_string_pretty(&described)?)?;
                stdout.flush()?;
            }
            return Ok(i32::from(failed));
        }
        if began.elapsed() > Duration::from_secs(600) {
            bail!("the tasks are not running after 10 minutes; `berth ps` shows where they are");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = super::shutdown_signal() => bail!("interrupted; the tasks go on"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_is_named_after_the_image() {
        assert_eq!(family_of("nginx"), "nginx");
        assert_eq!(family_of("registry:5000/team/web:1.2"), "web");
        assert_eq!(family_of("busybox@sha256:abc"), "busybox");
        assert_eq!(family_of("a.b/c.d"), "c-d");
    }

    #[test]
    fn ports_read_as_docker_reads_them() {
        assert_eq!(
            port_mapping("80").expect("ok"),
            json!({"containerPort": 80, "protocol": "tcp"})
        );
        assert_eq!(
            port_mapping("8080:80").expect("ok"),
            json!({"containerPort": 80, "hostPort": 8080, "protocol": "tcp"})
        );
        assert_eq!(port_mapping("53/udp").expect("ok")["protocol"], "udp");
        assert!(port_mapping("http").is_err());
        assert!(port_mapping("80/sctp").is_err());
        assert!(port_mapping("0").is_err());
    }

    #[test]
    fn a_stopped_task_says_why_with_its_containers_reasons() {
        let task = json!({"stoppedReason": "Essential container in task exited",
                          "containers": [{"name": "a", "reason": "OutOfMemoryError"}, {"name": "b"}]});
        assert_eq!(
            stopped_reason(&task),
            "Essential container in task exited (OutOfMemoryError)"
        );
        assert_eq!(stopped_reason(&json!({})), "-");
    }
}
