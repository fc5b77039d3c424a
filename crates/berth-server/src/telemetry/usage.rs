//! ECS's CloudWatch metrics from what agents measure: `POST /v1/agent/stats` keeps each
//! running task's last CPU and memory figures; every [`TICK`] the server publishes, in
//! namespace `AWS/ECS`, `CPUUtilization` and `MemoryUtilization` as ECS computes them:
//!
//! - per service (dimensions `ClusterName`, `ServiceName`): the CPU units (MiB) its tasks
//!   use over those they reserve, in percent; the datapoint's minimum and maximum are those
//!   of its busiest and idlest task;
//! - per cluster (dimension `ClusterName`): the CPU units (MiB) all its tasks use over those
//!   its container instances registered.
//!
//! With them, in namespace `ECS/ContainerInsights` per service and per cluster, what the tasks
//! use: `CpuUtilized` (CPU units), `MemoryUtilized` (MiB), `NetworkRxBytes`,
//! `NetworkTxBytes`, `StorageReadBytes` and `StorageWriteBytes` (bytes per second); and per
//! task (`ClusterName`, `TaskDefinitionFamily`, `TaskId`) its `CpuUtilized` and
//! `MemoryUtilized`, kept 3 hours.
//!
//! Each tick adds one sample to the minute's statistics, so a minute's `Average` is the
//! average over its ticks. Tasks that reserve no CPU (or memory) count in the cluster's
//! figure but not in their service's, which has nothing to divide by.

use crate::app::App;
use crate::auth::Principal;
use crate::cloudwatch::{Datum, StatisticSet};
use crate::error::ApiError;
use crate::gateway::task_on_instance;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Response};
use berth_core::model::{ContainerInstanceStatus, TaskStatus};
use berth_core::telemetry::UsageReport;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the metrics are published.
pub const TICK: Duration = Duration::from_secs(10);
/// A task's figures older than this are no longer counted (its agent stopped reporting).
const STALE: Duration = Duration::from_secs(45);
/// The namespace ECS publishes in.
pub const NAMESPACE: &str = "AWS/ECS";
/// The namespace of Container Insights' figures.
pub const INSIGHTS_NAMESPACE: &str = "ECS/ContainerInsights";

/// The last figures of each task, by task ARN.
#[derive(Debug, Default)]
pub struct UsageBoard {
    samples: Mutex<HashMap<String, Sample>>,
}

#[derive(Debug, Clone)]
struct Sample {
    cluster: String,
    cpu_units: f64,
    memory_mib: f64,
    /// Network received and sent, block devices read and written: bytes per second.
    io: [f64; 4],
    at: Instant,
}

impl UsageBoard {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Sample>> {
        self.samples.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The route's handler.
pub async fn report(
    State(app): State<Arc<App>>,
    Extension(caller): Extension<Principal>,
    body: Bytes,
) -> Response {
    match record(&app, caller, &body) {
        Ok(()) => (axum::http::StatusCode::OK, "{}").into_response(),
        Err(e) => e.into_response(),
    }
}

fn record(app: &Arc<App>, caller: Principal, body: &[u8]) -> Result<(), ApiError> {
    let report: UsageReport = crate::protocol::parse_input(body)?;
    let instance =
        crate::gateway::agent_instance(app, caller, &report.cluster, &report.container_instance)?;
    let finite = |v: f64| v.is_finite() && v >= 0.0;
    let now = Instant::now();
    let mut kept = Vec::with_capacity(report.tasks.len());
    for usage in report.tasks {
        let io = [
            usage.network_rx_bytes_per_second,
            usage.network_tx_bytes_per_second,
            usage.storage_read_bytes_per_second,
            usage.storage_write_bytes_per_second,
        ];
        if !finite(usage.cpu_units) || !finite(usage.memory_mib) || !io.into_iter().all(finite) {
            return Err(ApiError::invalid_parameter(format!(
                "The figures of task {} must be non-negative numbers.",
                usage.task
            )));
        }
        let entry = task_on_instance(app, &report.cluster, &usage.task, &instance)?;
        kept.push((
            entry.arn().to_string(),
            Sample {
                cluster: report.cluster.clone(),
                cpu_units: usage.cpu_units,
                memory_mib: usage.memory_mib,
                io,
                at: now,
            },
        ));
    }
    app.usage.lock().extend(kept);
    Ok(())
}

/// Publishes the metrics every [`TICK`] until the server closes.
pub fn spawn(app: Arc<App>) {
    crate::controllers::every(app, TICK, |app| async move { publish(&app).await });
}

/// Stores the utilization of this moment.
async fn publish(app: &App) {
    let data = utilization(app, Instant::now(), epoch_ms());
    if data.is_empty() {
        return;
    }
    // `AWS/ECS` utilization is also kept per second (high resolution), which target
    // tracking on the `…HighResolution` metric types reads.
    let data: Vec<(Datum, bool)> = data
        .into_iter()
        .map(|d| {
            let high_resolution = d.namespace == NAMESPACE;
            (d, high_resolution)
        })
        .collect();
    let store = Arc::clone(&app.cloudwatch);
    let stored = tokio::task::spawn_blocking(move || store.put_at(data, epoch_ms())).await;
    match stored {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("cannot store ECS utilization metrics: {e}"),
        Err(e) => tracing::warn!("cannot store ECS utilization metrics: {e}"),
    }
}

fn epoch_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Used and reserved (or registered) amounts, with the extremes of the tasks' ratios.
#[derive(Debug, Default, Clone, Copy)]
struct Ratio {
    used: f64,
    of: f64,
    min: Option<f64>,
    max: Option<f64>,
}

impl Ratio {
    fn add_task(&mut self, used: f64, reserved: f64) {
        if reserved <= 0.0 {
            return;
        }
        let percent = used / reserved * 100.0;
        self.used += used;
        self.of += reserved;
        self.min = Some(self.min.map_or(percent, |m| m.min(percent)));
        self.max = Some(self.max.map_or(percent, |m| m.max(percent)));
    }

    fn statistics(&self) -> Option<StatisticSet> {
        if self.of <= 0.0 {
            return None;
        }
        let percent = self.used / self.of * 100.0;
        Some(StatisticSet {
            sample_count: 1.0,
            sum: percent,
            minimum: self.min.unwrap_or(percent),
            maximum: self.max.unwrap_or(percent),
        })
    }
}

/// CPU and memory of one service or cluster, and what its tasks use in all.
#[derive(Debug, Default, Clone, Copy)]
struct Utilization {
    cpu: Ratio,
    memory: Ratio,
    /// CPU units, MiB, then network received and sent, storage read and written (bytes/s).
    used: [f64; 6],
}

impl Utilization {
    fn add_use(&mut self, sample: &Sample) {
        let figures = [
            sample.cpu_units,
            sample.memory_mib,
            sample.io[0],
            sample.io[1],
            sample.io[2],
            sample.io[3],
        ];
        for (total, figure) in self.used.iter_mut().zip(figures) {
            *total += figure;
        }
    }
}

/// Container Insights' metrics, in the order of `Utilization::used`, with their units.
const INSIGHTS: [(&str, &str); 6] = [
    ("CpuUtilized", "None"),
    ("MemoryUtilized", "Megabytes"),
    ("NetworkRxBytes", "Bytes/Second"),
    ("NetworkTxBytes", "Bytes/Second"),
    ("StorageReadBytes", "Bytes/Second"),
    ("StorageWriteBytes", "Bytes/Second"),
];

/// The datapoints of this tick: the fresh samples of running tasks, summed per service and
/// per cluster. Stale samples and those of tasks no longer running are dropped.
fn utilization(app: &App, now: Instant, timestamp: i64) -> Vec<Datum> {
    let state = app.snapshot();
    let mut services: BTreeMap<(String, String), Utilization> = BTreeMap::new();
    // (cluster, family, task id) -> CPU units, MiB.
    let mut tasks: Vec<(String, String, String, f64, f64)> = Vec::new();
    let mut clusters: BTreeMap<String, Utilization> = BTreeMap::new();
    {
        let mut samples = app.usage.lock();
        samples.retain(|arn, sample| {
            if now.duration_since(sample.at) > STALE {
                return false;
            }
            let Some(entry) = crate::handlers::task_lookup::task_key_of(&sample.cluster, arn)
                .ok()
                .and_then(|key| state.task(&key))
            else {
                return false;
            };
            if entry.status != TaskStatus::Running {
                return false;
            }
            let definition = entry
                .task
                .task_definition_arn
                .as_deref()
                .and_then(|td| state.definition(td));
            let reserved = definition.map(|d| {
                berth_core::resources::task_resources(
                    &d.task_definition,
                    &entry.task.overrides.clone().unwrap_or_default(),
                )
            });
            let (cpu, memory) = reserved.map_or((0.0, 0.0), |r| (r.cpu as f64, r.memory as f64));
            tasks.push((
                sample.cluster.clone(),
                entry.family().unwrap_or_default().to_string(),
                arn.rsplit('/').next().unwrap_or_default().to_string(),
                sample.cpu_units,
                sample.memory_mib,
            ));
            let cluster = clusters.entry(sample.cluster.clone()).or_default();
            cluster.cpu.used += sample.cpu_units;
            cluster.memory.used += sample.memory_mib;
            cluster.add_use(sample);
            if let Some(service) = entry.service() {
                let totals = services
                    .entry((sample.cluster.clone(), service.to_string()))
                    .or_default();
                totals.cpu.add_task(sample.cpu_units, cpu);
                totals.memory.add_task(sample.memory_mib, memory);
                totals.add_use(sample);
            }
            true
        });
    }
    for (name, totals) in clusters.iter_mut() {
        for instance in state.instances_of(name) {
            let active = matches!(
                instance.value.status,
                Some(ContainerInstanceStatus::Active | ContainerInstanceStatus::Draining)
            );
            if !active {
                continue;
            }
            for resource in instance.value.registered_resources.iter().flatten() {
                let amount = resource.integer_value.map_or(0.0, f64::from);
                match resource.name.as_deref() {
                    Some("CPU") => totals.cpu.of += amount,
                    Some("MEMORY") => totals.memory.of += amount,
                    _ => {}
                }
            }
        }
    }
    let mut data = Vec::new();
    let datum = |namespace: &str,
                 metric: &str,
                 dimensions: &[(String, String)],
                 statistics: StatisticSet,
                 unit: &str| Datum {
        namespace: namespace.to_string(),
        metric_name: metric.to_string(),
        dimensions: dimensions.to_vec(),
        timestamp,
        statistics,
        unit: unit.to_string(),
    };
    let mut publish = |dimensions: Vec<(String, String)>, totals: &Utilization| {
        for (metric, ratio) in [
            ("CPUUtilization", &totals.cpu),
            ("MemoryUtilization", &totals.memory),
        ] {
            if let Some(statistics) = ratio.statistics() {
                data.push(datum(NAMESPACE, metric, &dimensions, statistics, "Percent"));
            }
        }
        for ((metric, unit), value) in INSIGHTS.into_iter().zip(totals.used) {
            let statistics = StatisticSet::single(value);
            data.push(datum(
                INSIGHTS_NAMESPACE,
                metric,
                &dimensions,
                statistics,
                unit,
            ));
        }
    };
    for (name, totals) in &clusters {
        publish(vec![("ClusterName".to_string(), name.clone())], totals);
    }
    for ((cluster, service), totals) in &services {
        publish(
            vec![
                ("ClusterName".to_string(), cluster.clone()),
                ("ServiceName".to_string(), service.clone()),
            ],
            totals,
        );
    }
    for (cluster, family, task_id, cpu, memory) in tasks {
        let dimensions = vec![
            ("ClusterName".to_string(), cluster),
            ("TaskDefinitionFamily".to_string(), family),
            ("TaskId".to_string(), task_id),
        ];
        for (metric, unit, value) in [
            ("CpuUtilized", "None", cpu),
            ("MemoryUtilized", "Megabytes", memory),
        ] {
            let statistics = StatisticSet::single(value);
            data.push(datum(
                INSIGHTS_NAMESPACE,
                metric,
                &dimensions,
                statistics,
                unit,
            ));
        }
    }
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_ratio_weighs_tasks_by_what_they_reserve() {
        let mut ratio = Ratio::default();
        ratio.add_task(256.0, 256.0); // 100 %
        ratio.add_task(0.0, 768.0); // 0 %
        let stats = ratio.statistics().expect("has reservations");
        assert_eq!(stats.sum, 25.0);
        assert_eq!(stats.sample_count, 1.0);
        assert_eq!(stats.minimum, 0.0);
        assert_eq!(stats.maximum, 100.0);
    }

    #[test]
    fn tasks_that_reserve_nothing_give_no_ratio() {
        let mut ratio = Ratio::default();
        ratio.add_task(100.0, 0.0);
        assert!(ratio.statistics().is_none());
    }
}
