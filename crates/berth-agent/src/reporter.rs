//! The reporter: sends the engine's state reports to the server, in order per task, retrying
//! with backoff until the server answers (a rejection is logged and dropped).

use crate::backoff::Backoff;
use crate::client::{ClientError, ServerClient};
use async_trait::async_trait;
use berth_core::gateway::SubmitTaskStateChange;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

/// Where reports go: the server, or a recording fake in tests.
#[async_trait]
pub trait ReportSink: Send + Sync + 'static {
    /// Submits one report.
    async fn submit(&self, report: &SubmitTaskStateChange) -> Result<(), ClientError>;
}

#[async_trait]
impl ReportSink for ServerClient {
    async fn submit(&self, report: &SubmitTaskStateChange) -> Result<(), ClientError> {
        self.submit_task_state_change(report).await
    }
}

/// Sends every report from `reports` until that channel closes and every queue is drained.
/// Reports of one task go one at a time, in order; tasks do not wait for each other. A task
/// with nothing to send holds no worker and no queue: a worker starts when a report queues
/// and ends when its queue is empty.
pub fn spawn(
    sink: Arc<dyn ReportSink>,
    mut reports: mpsc::UnboundedReceiver<SubmitTaskStateChange>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let queues: Arc<Mutex<Queues>> = Arc::default();
        let mut workers = JoinSet::new();
        while let Some(report) = reports.recv().await {
            while workers.try_join_next().is_some() {}
            let task = report.task.clone().unwrap_or_default();
            let started = {
                let mut queues = lock(&queues);
                match queues.get_mut(&task) {
                    Some(queue) => {
                        queue.push_back(report);
                        false
                    }
                    None => {
                        queues.insert(task.clone(), VecDeque::from([report]));
                        true
                    }
                }
            };
            if started {
                workers.spawn(send_in_order(Arc::clone(&sink), Arc::clone(&queues), task));
            }
        }
        workers.join_all().await;
    })
}

/// Reports waiting to go, by task ARN. A task is listed exactly while its worker runs.
type Queues = HashMap<String, VecDeque<SubmitTaskStateChange>>;

fn lock(queues: &Mutex<Queues>) -> std::sync::MutexGuard<'_, Queues> {
    queues.lock().unwrap_or_else(|p| p.into_inner())
}

/// Most reports of one task merged into one submission.
const MAX_COALESCED: usize = 32;

/// One report saying what `earlier` then `later` say: the later status and reason, every
/// container change in order, the first pull start and the last pull and execution stops.
/// The server applies reports forward-only, so this is the same as sending both.
pub fn coalesce(
    earlier: SubmitTaskStateChange,
    later: SubmitTaskStateChange,
) -> SubmitTaskStateChange {
    let containers = match (earlier.containers, later.containers) {
        (Some(mut first), Some(second)) => {
            first.extend(second);
            Some(first)
        }
        (first, second) => first.or(second),
    };
    SubmitTaskStateChange {
        cluster: later.cluster.or(earlier.cluster),
        task: later.task.or(earlier.task),
        status: later.status.or(earlier.status),
        reason: later.reason.or(earlier.reason),
        containers,
        pull_started_at: earlier.pull_started_at.or(later.pull_started_at),
        pull_stopped_at: later.pull_stopped_at.or(earlier.pull_stopped_at),
        execution_stopped_at: later.execution_stopped_at.or(earlier.execution_stopped_at),
        network_interface: earlier.network_interface.or(later.network_interface),
    }
}

/// Sends the queued reports of `task` until its queue is empty, then ends (and unlists it).
async fn send_in_order(sink: Arc<dyn ReportSink>, queues: Arc<Mutex<Queues>>, task: String) {
    loop {
        // Reports that queued up while the previous one was on its way go out as one.
        let report = {
            let mut queues = lock(&queues);
            let next = queues.get_mut(&task).and_then(|queue| {
                let mut taken = queue.drain(..queue.len().min(MAX_COALESCED + 1));
                let first = taken.next()?;
                Some(taken.fold(first, coalesce))
            });
            match next {
                Some(report) => report,
                None => {
                    queues.remove(&task);
                    return;
                }
            }
        };
        let mut backoff = Backoff::default();
        let mut failures = 0u32;
        loop {
            match sink.submit(&report).await {
                Ok(()) => break,
                Err(err) if err.is_retryable() => {
                    failures += 1;
                    if failures.is_power_of_two() {
                        tracing::warn!(task = ?report.task, status = ?report.status, attempts = failures, "cannot report task state, retrying: {err}");
                    }
                    tokio::time::sleep(backoff.next_delay()).await;
                }
                Err(err) => {
                    tracing::warn!(task = ?report.task, status = ?report.status, "the server rejected a task state report: {err}");
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Records reports; fails the first `failures` submissions of each status with `error`.
    struct Recorder {
        sent: Mutex<Vec<(String, String)>>,
        failures: Mutex<HashMap<String, u32>>,
        error: ClientError,
    }

    #[async_trait]
    impl ReportSink for Recorder {
        async fn submit(&self, report: &SubmitTaskStateChange) -> Result<(), ClientError> {
            let key = format!(
                "{}:{}",
                report.task.clone().unwrap_or_default(),
                report.status.clone().unwrap_or_default()
            );
            let mut failures = self.failures.lock().expect("lock");
            if let Some(left) = failures.get_mut(&key).filter(|n| **n > 0) {
                *left -= 1;
                return Err(self.error.clone());
            }
            drop(failures);
            self.sent.lock().expect("lock").push((
                report.task.clone().unwrap_or_default(),
                report.status.clone().unwrap_or_default(),
            ));
            Ok(())
        }
    }

    fn report(task: &str, status: &str) -> SubmitTaskStateChange {
        SubmitTaskStateChange {
            task: Some(task.into()),
            status: Some(status.into()),
            ..Default::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn reports_of_a_task_are_retried_in_order_until_the_server_takes_them() {
        let recorder = Arc::new(Recorder {
            sent: Mutex::new(Vec::new()),
            failures: Mutex::new(HashMap::from([("a:PENDING".to_string(), 5)])),
            error: ClientError::Transport("connection refused".into()),
        });
        let (sender, receiver) = mpsc::unbounded_channel();
        let reporter = spawn(recorder.clone(), receiver);
        sender.send(report("a", "PENDING")).expect("send");
        tokio::time::sleep(Duration::from_millis(1)).await;
        // These queue up behind the retried PENDING and go out together.
        sender.send(report("a", "ACTIVATING")).expect("send");
        sender.send(report("a", "RUNNING")).expect("send");
        sender.send(report("b", "PENDING")).expect("send");
        drop(sender);
        tokio::time::timeout(Duration::from_secs(60), reporter)
            .await
            .expect("drained")
            .expect("reporter");
        let sent = recorder.sent.lock().expect("lock").clone();
        let of_a: Vec<&str> = sent
            .iter()
            .filter(|(t, _)| t == "a")
            .map(|(_, s)| s.as_str())
            .collect();
        assert_eq!(of_a, ["PENDING", "RUNNING"]);
        // Task b did not wait behind task a's retries.
        assert_eq!(sent[0], ("b".to_string(), "PENDING".to_string()));
    }

    #[test]
    fn coalesced_reports_keep_every_container_change_and_the_latest_status() {
        use berth_core::model::task::ContainerStateChange;
        let change = |name: &str, status: &str| ContainerStateChange {
            container_name: Some(name.into()),
            status: Some(status.into()),
            ..Default::default()
        };
        let first = SubmitTaskStateChange {
            pull_started_at: Some(1.0),
            containers: Some(vec![change("web", "RUNNING")]),
            ..report("a", "ACTIVATING")
        };
        let second = SubmitTaskStateChange {
            reason: Some("Essential container in task exited".into()),
            containers: Some(vec![change("web", "STOPPED")]),
            ..report("a", "DEACTIVATING")
        };
        let merged = coalesce(first, second);
        assert_eq!(merged.status.as_deref(), Some("DEACTIVATING"));
        assert_eq!(merged.pull_started_at, Some(1.0));
        assert_eq!(
            merged.reason.as_deref(),
            Some("Essential container in task exited")
        );
        let statuses: Vec<_> = merged
            .containers
            .iter()
            .flatten()
            .filter_map(|c| c.status.clone())
            .collect();
        assert_eq!(statuses, ["RUNNING", "STOPPED"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rejected_report_is_dropped_and_the_next_one_sent() {
        let recorder = Arc::new(Recorder {
            sent: Mutex::new(Vec::new()),
            failures: Mutex::new(HashMap::from([("a:PENDING".to_string(), 1)])),
            error: ClientError::Api {
                status: 400,
                kind: "ClientException".into(),
                message: "bad".into(),
            },
        });
        let (sender, receiver) = mpsc::unbounded_channel();
        let reporter = spawn(recorder.clone(), receiver);
        sender.send(report("a", "PENDING")).expect("send");
        tokio::time::sleep(Duration::from_millis(1)).await;
        sender.send(report("a", "STOPPED")).expect("send");
        drop(sender);
        reporter.await.expect("reporter");
        assert_eq!(
            recorder.sent.lock().expect("lock").clone(),
            vec![("a".to_string(), "STOPPED".to_string())]
        );
    }
}
