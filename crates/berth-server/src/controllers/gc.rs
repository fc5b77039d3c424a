//! Garbage collection of what ECS lets go of:
//! - a STOPPED task stays describable for the configured retention (24 h by default, where ECS
//!   keeps them about an hour), then its record is deleted;
//! - a task definition revision in DELETE_IN_PROGRESS is deleted once no unstopped task and no
//!   active service deployment uses it (its family's revision counter stays, so numbers are
//!   never reused);
//! - a RunTask `clientToken` is remembered for the same retention, then forgotten.

use crate::app::App;
use berth_core::model::task::Task;
use berth_core::model::task_definition::TaskDefinitionRecord;
use berth_core::model::{ServiceStatus, TaskDefinitionStatus};
use berth_core::service::ServiceRecord;
use berth_core::task_state::TaskStatus;
use berth_store::{keys, Compare, KeyValue, Txn};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Which stopped tasks are due for deletion at `now` (epoch seconds): their keys and revisions.
pub fn expired(tasks: &[(String, u64, Task)], now: f64, retention: Duration) -> Vec<(String, u64)> {
    tasks
        .iter()
        .filter(|(_, _, task)| TaskStatus::of(task) == TaskStatus::Stopped)
        .filter(|(_, _, task)| {
            task.stopped_at
                .is_some_and(|at| now - at >= retention.as_secs_f64())
        })
        .map(|(key, revision, _)| (key.clone(), *revision))
        .collect()
}

/// Which DELETE_IN_PROGRESS task definitions no longer have users: none of `in_use` (ARNs of
/// task definitions of unstopped tasks and of live service deployments).
pub fn deletable_definitions(
    definitions: &[(String, u64, TaskDefinitionRecord)],
    in_use: &HashSet<String>,
) -> Vec<(String, u64)> {
    definitions
        .iter()
        .filter(|(_, _, r)| {
            r.task_definition.status == Some(TaskDefinitionStatus::DeleteInProgress)
        })
        .filter(|(_, _, r)| {
            r.task_definition
                .task_definition_arn
                .as_ref()
                .is_none_or(|arn| !in_use.contains(arn))
        })
        .map(|(key, revision, _)| (key.clone(), *revision))
        .collect()
}

/// Which client-token records (with their `createdAt`) are older than the retention.
pub fn expired_tokens(
    tokens: &[(String, u64, f64)],
    now: f64,
    retention: Duration,
) -> Vec<(String, u64)> {
    tokens
        .iter()
        .filter(|(_, _, created_at)| now - created_at >= retention.as_secs_f64())
        .map(|(key, revision, _)| (key.clone(), *revision))
        .collect()
}

fn decoded<T: serde::de::DeserializeOwned>(entries: Vec<KeyValue>) -> Vec<(String, u64, T)> {
    entries
        .into_iter()
        .filter_map(|kv| {
            let value: T = serde_json::from_slice(&kv.value).ok()?;
            Some((kv.key, kv.mod_revision, value))
        })
        .collect()
}

/// The task definitions that unstopped tasks and live service deployments use.
fn definitions_in_use(
    tasks: &[(String, u64, Task)],
    services: &[(String, u64, ServiceRecord)],
) -> HashSet<String> {
    let mut in_use: HashSet<String> = tasks
        .iter()
        .filter(|(_, _, t)| TaskStatus::of(t) != TaskStatus::Stopped)
        .filter_map(|(_, _, t)| t.task_definition_arn.clone())
        .collect();
    for (_, _, record) in services {
        let service = &record.service;
        if service.status == Some(ServiceStatus::Inactive) {
            continue;
        }
        in_use.extend(service.task_definition.clone());
        in_use.extend(
            service
                .deployments
                .iter()
                .flatten()
                .filter_map(|d| d.task_definition.clone()),
        );
    }
    in_use
}

/// How many records one GC transaction deletes at most.
const GC_BATCH: usize = 256;

/// Deletes what is due once; returns how many records went.
pub async fn sweep(app: &App) -> usize {
    let now = app.now();
    let retention = app.config.stopped_task_retention;
    let state = app.snapshot();
    // Only the fields the rules read are copied out of the cache.
    let tasks: Vec<(String, u64, Task)> = state
        .all_tasks()
        .map(|t| {
            let task = Task {
                last_status: t.task.last_status,
                stopped_at: t.task.stopped_at,
                task_definition_arn: t.task.task_definition_arn.clone(),
                ..Task::default()
            };
            (t.key.clone(), t.mod_revision, task)
        })
        .collect();
    drop(state);
    let services: Vec<(String, u64, ServiceRecord)> = decoded(app.state.list(keys::SERVICES));
    let definitions: Vec<(String, u64, TaskDefinitionRecord)> =
        decoded(app.state.list(keys::TASK_DEFINITIONS));
    let tokens: Vec<(String, u64, f64)> =
        decoded::<serde_json::Value>(app.state.list(keys::CLIENT_TOKENS))
            .into_iter()
            .map(|(key, revision, v)| (key, revision, v["createdAt"].as_f64().unwrap_or(0.0)))
            .collect();
    let mut due = expired(&tasks, now, retention);
    due.extend(deletable_definitions(
        &definitions,
        &definitions_in_use(&tasks, &services),
    ));
    due.extend(expired_tokens(&tokens, now, retention));
    // Deletes go in batches, each one transaction; a batch that loses a race to another
    // writer is retried key by key, so one changed record does not hold back the rest.
    let mut deleted = 0;
    for batch in due.chunks(GC_BATCH) {
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

/// Runs `sweep` every `every` for as long as the app lives.
pub fn spawn(app: Arc<App>, every: Duration) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(&app);
    drop(app);
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        loop {
            interval.tick().await;
            let Some(app) = weak.upgrade() else { return };
            let deleted = sweep(&app).await;
            if deleted > 0 {
                tracing::info!(
                    deleted,
                    "gc: purged stopped tasks, deleted task definitions and expired client tokens"
                );
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_core::model::task_definition::TaskDefinition;

    fn stopped(at: f64) -> Task {
        Task {
            last_status: Some(TaskStatus::Stopped),
            stopped_at: Some(at),
            ..Task::default()
        }
    }

    #[test]
    fn only_stopped_tasks_past_retention_expire() {
        let tasks = vec![
            ("/tasks/c/old".to_string(), 3, stopped(1000.0)),
            ("/tasks/c/new".to_string(), 4, stopped(1000.0 + 3500.0)),
            (
                "/tasks/c/running".to_string(),
                5,
                Task {
                    last_status: Some(TaskStatus::Running),
                    ..Task::default()
                },
            ),
        ];
        let due = expired(&tasks, 1000.0 + 3600.0, Duration::from_secs(3600));
        assert_eq!(due, vec![("/tasks/c/old".to_string(), 3)]);
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
        let definitions = vec![
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
        let running = Task {
            last_status: Some(TaskStatus::Running),
            task_definition_arn: Some("td:web:2".into()),
            ..Task::default()
        };
        let finished = Task {
            task_definition_arn: Some("td:web:1".into()),
            ..stopped(1.0)
        };
        let tasks = vec![
            ("/tasks/c/a".to_string(), 1, running),
            ("/tasks/c/b".to_string(), 2, finished),
        ];
        let in_use = definitions_in_use(&tasks, &[]);
        assert_eq!(
            deletable_definitions(&definitions, &in_use),
            vec![("/taskdefs/web/1".to_string(), 7)]
        );
    }

    #[test]
    fn client_tokens_are_forgotten_after_the_retention() {
        let tokens = vec![
            ("/client-tokens/c/a".to_string(), 1, 100.0),
            ("/client-tokens/c/b".to_string(), 2, 5000.0),
        ];
        assert_eq!(
            expired_tokens(&tokens, 4000.0, Duration::from_secs(3600)),
            vec![("/client-tokens/c/a".to_string(), 1)]
        );
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
