//! The load: concurrent RunTask callers placing the tasks in batches of 10 (spread over
//! instances), a reader describing random started tasks meanwhile, and a watcher that follows
//! every placed task through DescribeTasks until it is RUNNING.

use super::api::{Api, CLUSTER};
use anyhow::Context;
use berth_agent::client::ClientError;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Family of the benchmark's task definition.
pub const FAMILY: &str = "fleet";
/// Memory each task reserves, in MiB: the least ECS accepts, so that many tasks fit.
pub const TASK_MEMORY_MIB: u64 = 6;
/// CPU units each task reserves.
pub const TASK_CPU_UNITS: u64 = 1;
/// Tasks per RunTask call (ECS's most).
const BATCH: usize = 10;
/// Pause before a RunTask is tried again.
const RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Pause of the reader between two DescribeTasks calls.
const READER_PAUSE: Duration = Duration::from_millis(10);
/// Pause of the watcher between two sweeps over the tasks not yet RUNNING.
const WATCH_PAUSE: Duration = Duration::from_millis(100);

/// The task definition every task runs: one small container.
pub fn task_definition() -> Value {
    json!({"family": FAMILY, "containerDefinitions": [{
        "name": "app", "image": "busybox", "essential": true,
        "cpu": TASK_CPU_UNITS, "memoryReservation": TASK_MEMORY_MIB,
        "command": ["sleep", "infinity"]
    }]})
}

/// A task RunTask placed.
#[derive(Debug, Clone)]
pub struct Placed {
    pub task_arn: String,
    pub instance_arn: String,
}

/// What the load did and saw.
#[derive(Debug, Default)]
pub struct LoadOutcome {
    /// Every RunTask attempt's latency.
    pub run_task_latencies: Vec<Duration>,
    /// The reader's DescribeTasks latencies.
    pub describe_latencies: Vec<Duration>,
    /// Tasks placed, in the order their RunTask answered.
    pub placed: Vec<Placed>,
    /// Tasks asked for but not placed.
    pub unplaced: usize,
    /// Why tasks were not placed (RunTask `failures` reasons and errors), with how many.
    pub failures: BTreeMap<String, usize>,
    /// RunTask attempts that failed transiently and were retried.
    pub retries: usize,
    /// Placed tasks seen RUNNING.
    pub running: usize,
    /// Placed tasks seen STOPPED (with their reason).
    pub stopped: Vec<String>,
    /// Placed tasks still not RUNNING when the time ran out.
    pub not_running: Vec<String>,
    /// From the first RunTask call to the last task seen RUNNING.
    pub elapsed: Duration,
}

#[derive(Debug, Default)]
struct Shared {
    next_batch: AtomicUsize,
    placed: Mutex<Vec<Placed>>,
    failures: Mutex<BTreeMap<String, usize>>,
    unplaced: AtomicUsize,
    retries: AtomicUsize,
    done: AtomicBool,
}

impl Shared {
    fn placed(&self) -> MutexGuard<'_, Vec<Placed>> {
        self.placed.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn fail(&self, tasks: usize, why: String) {
        self.unplaced.fetch_add(tasks, Ordering::Relaxed);
        *self
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(why)
            .or_default() += tasks;
    }
}

/// Places `tasks` tasks with `callers` concurrent RunTask loops and waits, until `timeout`,
/// for all of them to be RUNNING. A timeout is not an error: the outcome says what is left.
pub async fn place(
    api: &Api,
    tasks: usize,
    callers: usize,
    timeout: Duration,
) -> anyhow::Result<LoadOutcome> {
    let shared = Arc::new(Shared::default());
    let started = Instant::now();
    let deadline = started + timeout;
    let callers: Vec<_> = (0..callers.max(1))
        .map(|_| tokio::spawn(run_tasks(api.clone(), Arc::clone(&shared), tasks, deadline)))
        .collect();
    let reader = tokio::spawn(read_tasks(api.clone(), Arc::clone(&shared)));
    let callers_done = || callers.iter().all(|c| c.is_finished());
    let watched = watch_running(api, &shared, callers_done, deadline).await;
    shared.done.store(true, Ordering::Relaxed);
    let mut outcome = LoadOutcome::default();
    for caller in callers {
        outcome.run_task_latencies.extend(caller.await?);
    }
    outcome.describe_latencies = reader.await?;
    let watched = watched?;
    outcome.running = watched.running;
    outcome.stopped = watched.stopped;
    outcome.not_running = watched.pending;
    outcome.elapsed = watched
        .last_running
        .map_or(started.elapsed(), |t| t - started);
    outcome.placed = std::mem::take(&mut *shared.placed());
    outcome.retries = shared.retries.load(Ordering::Relaxed);
    outcome.failures =
        std::mem::take(&mut *shared.failures.lock().unwrap_or_else(|p| p.into_inner()));
    // Batches never sent (the time ran out, or the watcher failed) are not placed either.
    let failed = shared.unplaced.load(Ordering::Relaxed);
    let never_asked = tasks.saturating_sub(outcome.placed.len() + failed);
    if never_asked > 0 {
        outcome.failures.insert(
            "never asked for: the time ran out first".to_string(),
            never_asked,
        );
    }
    outcome.unplaced = failed + never_asked;
    Ok(outcome)
}

/// One RunTask caller: takes the next batch until all are taken (or the time is up).
async fn run_tasks(
    api: Api,
    shared: Arc<Shared>,
    tasks: usize,
    deadline: Instant,
) -> Vec<Duration> {
    let mut latencies = Vec::new();
    loop {
        let batch = shared.next_batch.fetch_add(1, Ordering::Relaxed);
        let first = batch * BATCH;
        if first >= tasks || Instant::now() > deadline || shared.done.load(Ordering::Relaxed) {
            return latencies;
        }
        let count = BATCH.min(tasks - first);
        let body = json!({
            "cluster": CLUSTER, "taskDefinition": FAMILY, "count": count,
            "placementStrategy": [{"type": "spread", "field": "instanceId"}],
            "clientToken": format!("fleet-{batch}"),
        });
        // A transient failure (a timeout on a busy server) is retried until the deadline
        // with the same clientToken, so a retry never places the batch twice.
        let answer = loop {
            let (result, took) = api.timed("RunTask", &body).await;
            latencies.push(took);
            match result {
                Err(err) if err.is_retryable() && Instant::now() < deadline => {
                    shared.retries.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
                other => break other,
            }
        };
        record(&shared, count, answer);
    }
}

/// Takes in one RunTask answer for `count` tasks.
fn record(shared: &Shared, count: usize, answer: Result<Value, ClientError>) {
    let answer = match answer {
        Ok(answer) => answer,
        Err(err) => return shared.fail(count, format!("RunTask error: {err}")),
    };
    let placed: Vec<Placed> = answer["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some(Placed {
                task_arn: t["taskArn"].as_str()?.to_string(),
                instance_arn: t["containerInstanceArn"].as_str()?.to_string(),
            })
        })
        .collect();
    if placed.len() < count {
        let reasons: Vec<&str> = answer["failures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["reason"].as_str())
            .collect();
        let why = if reasons.is_empty() {
            "RunTask placed fewer tasks than asked, naming no failure".to_string()
        } else {
            format!("RunTask failure: {}", reasons.join(", "))
        };
        shared.fail(count - placed.len(), why);
    }
    shared.placed().extend(placed);
}

/// The reader: DescribeTasks of up to 100 random placed tasks, again and again, timed.
async fn read_tasks(api: Api, shared: Arc<Shared>) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let mut random = Random::seeded();
    while !shared.done.load(Ordering::Relaxed) {
        let sample: Vec<String> = {
            let placed = shared.placed();
            if placed.is_empty() {
                Vec::new()
            } else {
                (0..placed.len().min(100))
                    .map(|_| placed[random.below(placed.len())].task_arn.clone())
                    .collect()
            }
        };
        if !sample.is_empty() {
            let body = json!({"cluster": CLUSTER, "tasks": sample});
            let (_, took) = api
                .timed_as::<serde::de::IgnoredAny>("DescribeTasks", &body)
                .await;
            latencies.push(took);
        }
        tokio::time::sleep(READER_PAUSE).await;
    }
    latencies
}

/// The part of a DescribeTasks answer the watcher reads.
#[derive(Debug, serde::Deserialize)]
struct Described {
    tasks: Vec<Seen>,
}

/// A described task's ARN and status.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Seen {
    task_arn: String,
    last_status: Option<String>,
    stopped_reason: Option<String>,
}

/// What the watcher saw.
#[derive(Debug, Default)]
struct Watched {
    running: usize,
    stopped: Vec<String>,
    pending: Vec<String>,
    last_running: Option<Instant>,
}

/// Follows placed tasks until every one is RUNNING (or STOPPED), the callers being done, or
/// until `deadline`.
async fn watch_running(
    api: &Api,
    shared: &Shared,
    callers_done: impl Fn() -> bool,
    deadline: Instant,
) -> anyhow::Result<Watched> {
    let mut watched = Watched::default();
    let mut taken = 0;
    loop {
        let finished = callers_done();
        {
            let placed = shared.placed();
            watched
                .pending
                .extend(placed[taken..].iter().map(|p| p.task_arn.clone()));
            taken = placed.len();
        }
        if (finished && watched.pending.is_empty()) || Instant::now() > deadline {
            return Ok(watched);
        }
        let mut still = Vec::new();
        for batch in watched.pending.chunks(100) {
            let body = json!({"cluster": CLUSTER, "tasks": batch});
            let answer = match api.timed_as::<Described>("DescribeTasks", &body).await.0 {
                Ok(answer) => answer,
                // A busy server: look again in the next sweep, until the deadline.
                Err(err) if err.is_retryable() => {
                    still.extend(batch.iter().cloned());
                    continue;
                }
                Err(err) => return Err(err).context("DescribeTasks failed"),
            };
            let seen_at = Instant::now();
            let statuses: BTreeMap<&str, &Seen> = answer
                .tasks
                .iter()
                .map(|t| (t.task_arn.as_str(), t))
                .collect();
            for arn in batch {
                let task = statuses.get(arn.as_str());
                match task.and_then(|t| t.last_status.as_deref()) {
                    Some("RUNNING") => {
                        watched.running += 1;
                        watched.last_running = Some(seen_at);
                    }
                    Some("STOPPED") => watched.stopped.push(format!(
                        "{arn}: {}",
                        task.and_then(|t| t.stopped_reason.as_deref())
                            .unwrap_or("no reason")
                    )),
                    _ => still.push(arn.clone()),
                }
            }
        }
        watched.pending = still;
        if !watched.pending.is_empty() || !finished {
            tokio::time::sleep(WATCH_PAUSE).await;
        }
    }
}

/// A small xorshift generator: enough to pick random tasks, without a dependency.
#[derive(Debug)]
struct Random(u64);

impl Random {
    fn seeded() -> Random {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos());
        Random(u64::from(nanos) | 1)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}
