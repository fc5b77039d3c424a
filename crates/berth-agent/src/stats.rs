//! Resource use of the instance's tasks: every [`INTERVAL`] the agent samples each running
//! container's CPU and memory through the runtime (Docker's stats, one shot each; a new
//! container within 2 s of its start), sums
//! them per task and reports them to the server (`berth_core::telemetry::STATS_PATH`),
//! which publishes ECS's `CPUUtilization` and `MemoryUtilization` metrics.
//!
//! CPU use is the container's CPU time over the interval between two samples (for a container
//! seen for the first time, Docker's sample of a second before), in ECS CPU
//! units (1,024 per core); memory is what the container uses less its inactive page cache,
//! as `docker stats` shows it; network and block I/O are bytes per second over the interval.

use crate::client::ServerClient;
use crate::runtime::ContainerRuntime;
use berth_core::telemetry::{TaskUsage, UsageReport, STATS_PATH};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// Time between samples of a container.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// How often the agent looks for containers to sample: a container that has just started is
/// sampled within this long, the others every [`INTERVAL`].
const LOOK: Duration = Duration::from_secs(2);
/// Containers sampled at once.
const CONCURRENCY: usize = 8;

/// A container's CPU counters at one sample: its CPU time and the host's, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuCounters {
    pub container_ns: f64,
    pub system_ns: f64,
    pub online_cpus: f64,
}

/// A container's byte counters at one sample: network received and sent (all interfaces),
/// block devices read and written.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct IoCounters {
    pub rx: f64,
    pub tx: f64,
    pub read: f64,
    pub write: f64,
}

/// One container's figures from Docker's stats JSON.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub cpu: Option<CpuCounters>,
    /// The sample Docker took about a second before, when asked for it.
    pub previous_cpu: Option<CpuCounters>,
    /// Memory in use without the inactive page cache, in MiB.
    pub memory_mib: f64,
    pub io: IoCounters,
}

/// A container's CPU counters in Docker's `cpu_stats` (or `precpu_stats`) object, if it has
/// them (the previous sample of a one-shot answer is empty).
fn cpu_counters(cpu_stats: &serde_json::Value) -> Option<CpuCounters> {
    match (
        cpu_stats["cpu_usage"]["total_usage"].as_f64(),
        cpu_stats["system_cpu_usage"].as_f64(),
    ) {
        (Some(container_ns), Some(system_ns)) if system_ns > 0.0 => Some(CpuCounters {
            container_ns,
            system_ns,
            online_cpus: cpu_stats["online_cpus"]
                .as_f64()
                .filter(|n| *n > 0.0)
                .or_else(|| {
                    cpu_stats["cpu_usage"]["percpu_usage"]
                        .as_array()
                        .map(|a| a.len() as f64)
                })
                .unwrap_or(1.0),
        }),
        _ => None,
    }
}

/// Reads a sample out of Docker's stats JSON (cgroup v1 or v2).
pub fn sample_of(stats: &serde_json::Value) -> Sample {
    let cpu = cpu_counters(&stats["cpu_stats"]);
    let previous_cpu = cpu_counters(&stats["precpu_stats"]);
    let memory = &stats["memory_stats"];
    let usage = memory["usage"].as_f64().unwrap_or(0.0);
    let cache = memory["stats"]["inactive_file"]
        .as_f64()
        .or_else(|| memory["stats"]["total_inactive_file"].as_f64())
        .or_else(|| memory["stats"]["cache"].as_f64())
        .unwrap_or(0.0);
    let mut io = IoCounters::default();
    for network in stats["networks"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, n)| n)
    {
        io.rx += network["rx_bytes"].as_f64().unwrap_or(0.0);
        io.tx += network["tx_bytes"].as_f64().unwrap_or(0.0);
    }
    let entries = stats["blkio_stats"]["io_service_bytes_recursive"].as_array();
    for entry in entries.into_iter().flatten() {
        let value = entry["value"].as_f64().unwrap_or(0.0);
        match entry["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => io.read += value,
            Some("write") => io.write += value,
            _ => {}
        }
    }
    Sample {
        cpu,
        previous_cpu,
        memory_mib: (usage - cache).max(0.0) / (1024.0 * 1024.0),
        io,
    }
}

/// Bytes per second of each counter between two samples `seconds` apart (a counter that
/// went back — the container restarted — counts from zero).
pub fn io_rates(before: IoCounters, now: IoCounters, seconds: f64) -> IoCounters {
    let rate = |b: f64, n: f64| {
        if seconds <= 0.0 {
            0.0
        } else if n >= b {
            (n - b) / seconds
        } else {
            n / seconds
        }
    };
    IoCounters {
        rx: rate(before.rx, now.rx),
        tx: rate(before.tx, now.tx),
        read: rate(before.read, now.read),
        write: rate(before.write, now.write),
    }
}

/// CPU units in use between two samples of one container.
pub fn cpu_units(before: CpuCounters, now: CpuCounters) -> Option<f64> {
    let container = now.container_ns - before.container_ns;
    let system = now.system_ns - before.system_ns;
    (system > 0.0 && container >= 0.0).then(|| container / system * now.online_cpus * 1024.0)
}

/// Samples and reports until the agent stops.
pub async fn run(
    client: ServerClient,
    runtime: Arc<dyn ContainerRuntime>,
    cluster: String,
    instance_id: String,
) {
    let labels = crate::spec::instance_labels(&cluster, &instance_id);
    let mut last: HashMap<String, (Option<CpuCounters>, IoCounters, std::time::Instant)> =
        HashMap::new();
    let mut ticks = tokio::time::interval(LOOK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failing = false;
    loop {
        ticks.tick().await;
        let Ok(containers) = runtime.list_containers(&labels).await else {
            continue;
        };
        let running: Vec<(String, String)> = containers
            .into_iter()
            .filter(|c| c.running)
            .filter_map(|c| {
                let (task, _) = crate::spec::task_container_of(&c.labels)?;
                Some((c.id, task))
            })
            .collect();
        // A task is sampled whole (all its containers) when one of them is new or its last
        // sample is an interval old.
        let now = std::time::Instant::now();
        let due: std::collections::HashSet<&String> = running
            .iter()
            .filter(|(id, _)| {
                last.get(id)
                    .is_none_or(|(_, _, then)| now.duration_since(*then) + LOOK / 2 >= INTERVAL)
            })
            .map(|(_, task)| task)
            .collect();
        let running_ids: std::collections::HashSet<String> =
            running.iter().map(|(id, _)| id.clone()).collect();
        let running: Vec<(String, String)> = running
            .iter()
            .filter(|(_, task)| due.contains(task))
            .cloned()
            .collect();
        last.retain(|id, _| running_ids.contains(id));
        if running.is_empty() {
            continue;
        }
        let sampled: Vec<(String, String, Option<Sample>)> = futures_util::stream::iter(running)
            .map(|(id, task)| {
                let runtime = Arc::clone(&runtime);
                // A container seen for the first time is asked for Docker's sample of a
                // second before too, so its CPU use is known now rather than a tick later.
                let new = !last.contains_key(&id);
                async move {
                    let stats = if new {
                        runtime.stats_with_previous(&id).await
                    } else {
                        runtime.stats(&id).await
                    };
                    (id, task, stats.ok().map(|s| sample_of(&s)))
                }
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let mut tasks: BTreeMap<String, TaskUsage> = BTreeMap::new();
        // Tasks none of whose containers has a CPU figure yet: reporting them would count
        // a task that has just started as idle.
        let mut cpu_known: std::collections::HashSet<String> = Default::default();
        let at = std::time::Instant::now();
        let mut seen = HashMap::new();
        for (id, task, sample) in sampled {
            let Some(sample) = sample else { continue };
            let usage = tasks.entry(task.clone()).or_insert_with(|| TaskUsage {
                task,
                cpu_units: 0.0,
                memory_mib: 0.0,
                network_rx_bytes_per_second: 0.0,
                network_tx_bytes_per_second: 0.0,
                storage_read_bytes_per_second: 0.0,
                storage_write_bytes_per_second: 0.0,
            });
            usage.memory_mib += sample.memory_mib;
            let before_cpu = match last.get(&id) {
                Some((before, _, _)) => *before,
                None => sample.previous_cpu,
            };
            if let Some(units) = before_cpu
                .zip(sample.cpu)
                .and_then(|(before, now)| cpu_units(before, now))
            {
                usage.cpu_units += units;
                cpu_known.insert(usage.task.clone());
            }
            if let Some((_, before_io, then)) = last.get(&id) {
                let rates = io_rates(
                    *before_io,
                    sample.io,
                    at.duration_since(*then).as_secs_f64(),
                );
                usage.network_rx_bytes_per_second += rates.rx;
                usage.network_tx_bytes_per_second += rates.tx;
                usage.storage_read_bytes_per_second += rates.read;
                usage.storage_write_bytes_per_second += rates.write;
            }
            seen.insert(id, (sample.cpu, sample.io, at));
        }
        last.extend(seen);
        tasks.retain(|task, _| cpu_known.contains(task));
        if tasks.is_empty() {
            continue;
        }
        let report = UsageReport {
            cluster: cluster.clone(),
            container_instance: instance_id.clone(),
            tasks: tasks.into_values().collect(),
        };
        match client
            .post::<_, serde_json::Value>(STATS_PATH, &report)
            .await
        {
            Ok(_) if failing => {
                tracing::info!("usage reports reach the server again");
                failing = false;
            }
            Ok(_) => {}
            Err(e) if !failing => {
                tracing::warn!("cannot report task usage: {e}");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_cgroup_v2_sample_reads_cpu_counters_and_memory_without_inactive_cache() {
        let stats = json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000u64}, "system_cpu_usage": 40_000_000_000u64, "online_cpus": 2},
            "memory_stats": {"usage": 150 * 1024 * 1024, "stats": {"inactive_file": 50 * 1024 * 1024}}
        });
        let sample = sample_of(&stats);
        assert_eq!(sample.memory_mib, 100.0);
        let cpu = sample.cpu.expect("cpu counters");
        assert_eq!(cpu.online_cpus, 2.0);
    }

    #[test]
    fn the_previous_sample_gives_a_first_look_its_cpu_and_a_one_shot_answer_has_none() {
        let stats = json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000_000u64}, "system_cpu_usage": 42_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 2_000_000_000u64}, "system_cpu_usage": 40_000_000_000u64, "online_cpus": 2},
        });
        let sample = sample_of(&stats);
        let units = cpu_units(
            sample.previous_cpu.expect("previous"),
            sample.cpu.expect("now"),
        );
        // A whole core of two over the second between them: half the host, 1,024 units.
        assert_eq!(units, Some(1024.0));
        let one_shot = json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 3_000_000_000u64}, "system_cpu_usage": 42_000_000_000u64},
            "precpu_stats": {"cpu_usage": {"total_usage": 0}, "system_cpu_usage": 0},
        });
        assert_eq!(sample_of(&one_shot).previous_cpu, None);
    }

    #[test]
    fn cpu_units_are_the_share_of_the_host_times_its_cores() {
        let before = CpuCounters {
            container_ns: 0.0,
            system_ns: 0.0,
            online_cpus: 2.0,
        };
        // Half of one core of a two-core host: a quarter of the host's time.
        let now = CpuCounters {
            container_ns: 5e9,
            system_ns: 20e9,
            online_cpus: 2.0,
        };
        assert_eq!(cpu_units(before, now), Some(512.0));
        assert_eq!(cpu_units(now, now), None, "no time passed");
    }

    #[test]
    fn network_and_block_io_are_summed_and_become_rates() {
        let stats = json!({
            "networks": {"eth0": {"rx_bytes": 1000, "tx_bytes": 10}, "eth1": {"rx_bytes": 500, "tx_bytes": 5}},
            "blkio_stats": {"io_service_bytes_recursive": [
                {"major": 8, "minor": 0, "op": "read", "value": 4096},
                {"major": 8, "minor": 0, "op": "Write", "value": 8192},
                {"major": 8, "minor": 0, "op": "Total", "value": 12288}
            ]}
        });
        let io = sample_of(&stats).io;
        assert_eq!(
            io,
            IoCounters {
                rx: 1500.0,
                tx: 15.0,
                read: 4096.0,
                write: 8192.0
            }
        );
        let later = IoCounters {
            rx: 3500.0,
            tx: 15.0,
            read: 4096.0,
            write: 9192.0,
        };
        let rates = io_rates(io, later, 10.0);
        assert_eq!(
            rates,
            IoCounters {
                rx: 200.0,
                tx: 0.0,
                read: 0.0,
                write: 100.0
            }
        );
        let restarted = IoCounters {
            rx: 100.0,
            ..IoCounters::default()
        };
        assert_eq!(
            io_rates(io, restarted, 10.0).rx,
            10.0,
            "a counter that went back counts from zero"
        );
    }

    #[test]
    fn a_sample_without_cpu_counters_still_has_memory() {
        let sample = sample_of(&json!({"memory_stats": {"usage": 1048576}}));
        assert!(sample.cpu.is_none());
        assert_eq!(sample.memory_mib, 1.0);
    }
}
