//! Garbage collection of what ECS lets go of:
//! - a STOPPED task stays describable for the configured retention (24 h by default, where ECS
//!   keeps them about an hour), then its record is deleted;
//! - a task definition revision in DELETE_IN_PROGRESS is deleted once no unstopped task and no
//!   active service deployment uses it (its family's revision counter stays, so numbers are
//!   never reused);
//! - a RunTask `clientToken` is remembered for the same retention, then forgotten.

//!
//! Nothing here scans every task: the state cache keeps STOPPED tasks and client tokens ordered
//! by time and counts each task definition's unstopped users, so a sweep costs what it deletes,
//! and the collector sleeps until the oldest record falls due.

use crate::app::App;
use crate::state::{epoch_ms, State};
use berth_core::model::task_definition::TaskDefinitionRecord;
use berth_core::model::{ServiceStatus, TaskDefinitionStatus};
use berth_core::service::ServiceRecord;
use berth_store::{keys, Compare, Txn};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// How many records one GC transaction deletes at most.
const GC_BATCH: usize = 256;
/// The shortest sleep between sweeps (a due record that keeps losing races is not spun on).
const MIN_PAUSE: Duration = Duration::from_millis(100);

/// Which DELETE_IN_PROGRESS task definitions no longer have users (`in_use` says whether
/// an unstopped task or a live service deployment uses an ARN).
pub fn deletable_definitions<'a>(
    definitions: impl Iterator<Item = (&'a String, u64, &'a TaskDefinitionRecord)>,
    in_use: impl Fn(&str) -> bool,
) -> Vec<(String, u64)> {
    definitions
        .filter(|(_, _, r)| {
            r.task_definition.status == Some(TaskDefinitionStatus::DeleteInProgress)
        })
        .filter(|(_, _, r)| {
            r.task_definition
                .task_definition_arn
                .as_deref()
                .is_none_or(|arn| !in_use(arn))
        })
        .map(|(key, revision, _)| (key.clone(), revision))
        .collect()
}

/// The task definitions live services use (their current one and every deployment's).
fn used_by_services(state: &State) -> HashSet<String> {
    let mut in_use = HashSet::new();
    for (_, entry) in state.list(keys::SERVICES) {
        let Ok(record) = serde_json::from_slice::<ServiceRecord>(&entry.value) else {
            continue;
        };
        let service = record.service;
        if service.status == Some(ServiceStatus::Inactive) {
            continue;
        }
        in_use.extend(service.task_definition);
        in_use.extend(
            service
                .deployments
                .into_iter()
                .flatten()
                .filter_map(|d| d.task_definition),
        );
    }
    in_use
}

/// The keys (with revisions) due for deletion at `now` (epoch seconds).
fn due(state: &State, now: f64, retention: Duration) -> Vec<(String, u64)> {
    let retention = retention.as_secs_f64();
    let before = epoch_ms(now - retention).saturating_add(1);
    let mut due: Vec<(String, u64)> = state
        .stopped_before(before)
        .filter(|t| t.task.stopped_at.is_some_and(|at| now - at >= retention))
        .map(|t| (t.key.to_string(), t.mod_revision))
        .collect();
    due.extend(
        state
            .tokens_before(before)
            .map(|(key, revision)| (key.to_string(), revision)),
    );
    let deleting = state
        .all_definitions()
        .any(|(_, _, r)| r.task_definition.status == Some(TaskDefinitionStatus::DeleteInProgress));
    if deleting {
        let services = used_by_services(state);
        let definitions = state.all_definitions().map(|(k, r, d)| (k, r, d.as_ref()));
        due.extend(deletable_definitions(definitions, |arn| {
            state.definition_in_use(arn) || services.contains(arn)
        }));
    }
    due
}

/// When the oldest STOPPED task or client token falls due (epoch seconds).
fn next_due(state: &State, retention: Duration) -> Option<f64> {
    let first = [state.first_stopped(), state.first_token()]
        .into_iter()
        .flatten()
        .min()?;
    Some(first as f64 / 1000.0 + retention.as_secs_f64())
}

/// Deletes what is due now; returns how many records went.
pub async fn sweep(app: &App) -> usize {
    let due = due(
        &app.snapshot(),
        app.now(),
        app.config.stopped_task_retention,
    );
    // Deletes go in batches, each one transaction; a batch that loses a race to another
    // writer is retried key by key, so one changed record does not hold back the rest.
    let mut deleted = 0;
    let per_txn = GC_BATCH.min(app.write_limits().max_ops);
    for batch in due.chunks(per_txn) {
        let txn = batch.iter().fold(Txn::new(), |txn, (key, revision)| {
            txn.when(Compare::at(key, *revision)).delete(key)
        });
        match app.commit(txn).await {
            Ok(result) if result.succeeded => deleted += batch.len(),
            Ok(_) => {
                for (key, revision) in batch {
                    let txn = Txn::new().when(Compare::at(key, *revision)).delete(key);
                    match app.commit(txn).await {
                        Ok(result) if result.succeeded => deleted += 1,
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, key, "gc: delete failed"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "gc: batch delete failed"),
        }
    }
    deleted
}

/// Sweeps for as long as the app lives: again when the oldest record falls due, and at least
/// every `every` (for task definitions whose last user went).
pub fn spawn(app: Arc<App>, every: Duration) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(&app);
    drop(app);
    tokio::spawn(async move {
        loop {
            let Some(app) = weak.upgrade() else { return };
            let deleted = sweep(&app).await;
            if deleted > 0 {
                tracing::info!(
                    deleted,
                    "gc: purged stopped tasks, deleted task definitions and expired client tokens"
                );
            }
            let retention = app.config.stopped_task_retention;
            let wait = next_due(&app.snapshot(), retention)
                .map_or(every, |due| {
                    Duration::from_secs_f64((due - app.now()).clamp(0.0, every.as_secs_f64()))
                })
                .max(MIN_PAUSE);
            drop(app);
            tokio::time::sleep(wait).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::model::task::Task;
    use berth_core::model::task_definition::TaskDefinition;
    use berth_core::model::TaskStatus;
    use berth_store::KeyValue;

    fn item(key: &str, value: Vec<u8>) -> KeyValue {
        KeyValue {
            key: key.to_string(),
            value,
            create_revision: 1,
            mod_revision: 1,
            version: 1,
        }
    }

    fn task(key: &str, status: TaskStatus, stopped_at: Option<f64>) -> KeyValue {
        let task = Task {
            last_status: Some(status),
            stopped_at,
            ..Task::default()
        };
        item(key, serde_json::to_vec(&task).expect("json"))
    }

    #[test]
    fn only_stopped_tasks_and_tokens_past_retention_are_due_and_the_oldest_sets_the_timer() {
        let state = State::from_items(
            vec![
                task("/tasks/c/old", TaskStatus::Stopped, Some(1000.0)),
                task("/tasks/c/new", TaskStatus::Stopped, Some(1000.0 + 3500.0)),
                task("/tasks/c/running", TaskStatus::Running, None),
                item("/client-tokens/c/a", br#"{"createdAt": 100.0}"#.to_vec()),
                item("/client-tokens/c/b", br#"{"createdAt": 5000.0}"#.to_vec()),
            ],
            1,
        );
        let hour = Duration::from_secs(3600);
        let due = due(&state, 1000.0 + 3600.0, hour);
        assert_eq!(
            due,
            vec![
                ("/tasks/c/old".to_string(), 1),
                ("/client-tokens/c/a".to_string(), 1)
            ]
        );
        assert_eq!(next_due(&state, hour), Some(100.0 + 3600.0));
        assert_eq!(next_due(&State::default(), hour), None);
    }

    fn definition(arn: &str, status: TaskDefinitionStatus) -> TaskDefinitionRecord {
        TaskDefinitionRecord {
            task_definition: TaskDefinition {
                task_definition_arn: Some(arn.into()),
                status: Some(status),
                ..TaskDefinition::default()
            },
            tags: Vec::new(),
        }
    }

    #[test]
    fn deleted_definitions_go_only_once_nothing_uses_them() {
        let definitions = [
            (
                "/taskdefs/web/1".to_string(),
                7,
                definition("td:web:1", TaskDefinitionStatus::DeleteInProgress),
            ),
            (
                "/taskdefs/web/2".to_string(),
                8,
                definition("td:web:2", TaskDefinitionStatus::DeleteInProgress),
            ),
            (
                "/taskdefs/web/3".to_string(),
                9,
                definition("td:web:3", TaskDefinitionStatus::Inactive),
            ),
        ];
        let deletable =
            deletable_definitions(definitions.iter().map(|(k, r, d)| (k, *r, d)), |arn| {
                arn == "td:web:2"
            });
        assert_eq!(deletable, vec![("/taskdefs/web/1".to_string(), 7)]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_deleted_task_definition_disappears_at_the_next_sweep() {
        use crate::test_support::{app, call};
        let app = app().await;
        let call = |op: &'static str, body: serde_json::Value| {
            let app = app.clone();
            async move { call(&app, op, body).await }
        };
        let containers = serde_json::json!([{"name": "web", "image": "busybox", "memory": 64}]);
        for _ in 0..2 {
            call(
                "RegisterTaskDefinition",
                serde_json::json!({"family": "gone", "containerDefinitions": containers}),
            )
            .await
            .expect("register");
        }
        call(
            "DeregisterTaskDefinition",
            serde_json::json!({"taskDefinition": "gone:1"}),
        )
        .await
        .expect("deregister");
        call(
            "DeleteTaskDefinitions",
            serde_json::json!({"taskDefinitions": ["gone:1"]}),
        )
        .await
        .expect("delete");
        assert_eq!(sweep(&app).await, 1);
        let e = call(
            "DescribeTaskDefinition",
            serde_json::json!({"taskDefinition": "gone:1"}),
        )
        .await
        .expect_err("deleted");
        assert_eq!(e.name, "ClientException");
        call(
            "DescribeTaskDefinition",
            serde_json::json!({"taskDefinition": "gone:2"}),
        )
        .await
        .expect("still there");
        let again = call(
            "RegisterTaskDefinition",
            serde_json::json!({"family": "gone", "containerDefinitions": containers}),
        )
        .await
        .expect("register");
        assert_eq!(
            again["taskDefinition"]["revision"], 3,
            "revision numbers are never reused"
        );
    }
}
