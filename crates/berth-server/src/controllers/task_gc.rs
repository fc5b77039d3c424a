//! Stopped-task retention: a STOPPED task stays describable for the configured retention
//! (24 h by default, where ECS keeps them about an hour), then its record is deleted.

use crate::app::App;
use berth_core::model::task::Task;
use berth_core::task_state::TaskStatus;
use berth_store::{keys, Compare, Txn};
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

/// Deletes expired stopped tasks once; returns how many.
pub async fn sweep(app: &App) -> usize {
    let tasks: Vec<(String, u64, Task)> = app
        .view
        .list(keys::TASKS)
        .into_iter()
        .filter_map(|kv| {
            let task: Task = serde_json::from_slice(&kv.value).ok()?;
            Some((kv.key, kv.mod_revision, task))
        })
        .collect();
    let mut deleted = 0;
    for (key, revision) in expired(&tasks, app.now(), app.config.stopped_task_retention) {
        let txn = Txn::new().when(Compare::at(&key, revision)).delete(&key);
        match app.commit(txn).await {
            Ok(result) if result.succeeded => deleted += 1,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, key, "task gc: delete failed"),
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
                tracing::info!(deleted, "task gc: purged stopped tasks past retention");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped(at: f64) -> Task {
        Task {
            last_status: Some("STOPPED".into()),
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
                    last_status: Some("RUNNING".into()),
                    ..Task::default()
                },
            ),
        ];
        let due = expired(&tasks, 1000.0 + 3600.0, Duration::from_secs(3600));
        assert_eq!(due, vec![("/tasks/c/old".to_string(), 3)]);
    }
}
