//! Faults: repeated agent crashes under running and crash-looping tasks, a Docker daemon that
//! restarts, refuses or hangs, and a `docker stop` that never returns. Every task leaves
//! PENDING and STOPPING within the documented bounds, with a reason, and no container is ever
//! created twice.

use super::*;
use crate::engine::bounds::{DEFAULT_PULL_TIMEOUT, RETRY_WINDOW, STOP_CALL_GRACE, STOP_SLACK};
use crate::runtime::fake::{Behavior, SIGKILL_EXIT_CODE};
use std::collections::HashSet;

impl Harness {
    /// Applies reports as they come for `d` of (paused) time.
    async fn pump(&mut self, d: Duration) {
        let deadline = Instant::now() + d;
        while let Ok(Some(_)) = tokio::time::timeout_at(deadline, self.next()).await {}
    }

    /// Runtime ids of the containers of task `id` that exist now.
    fn container_ids_of(&self, id: &str) -> Vec<String> {
        let arn = task_arn(id);
        self.fake
            .containers()
            .into_iter()
            .filter(|c| c.labels.get(crate::spec::LABEL_TASK_ARN) == Some(&arn))
            .map(|c| c.id)
            .collect()
    }
}

#[tokio::test(start_paused = true)]
async fn ten_agent_crashes_never_duplicate_or_lose_a_container() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("loop", Behavior::exits(Duration::from_secs(2), 3));
    let steady = task_definition(json!([container("web", json!({}))]));
    let looping = task_definition(json!([container("loop", json!({}))]));
    let mut loop_ids = vec!["loop-0".to_string()];
    let tasks = |loop_ids: &[String]| {
        let mut tasks = vec![new_task(&steady, "steady")];
        tasks.extend(loop_ids.iter().map(|id| new_task(&looping, id)));
        tasks
    };
    h.assign(&tasks(&loop_ids));
    h.until("steady", TaskStatus::Running).await;
    let steady_id = h.runtime_id("steady", "web");
    let mut stopped_loops = 0;
    for crash in 0..10u64 {
        // Crash at a different point of the loop task's life each time.
        h.pump(Duration::from_millis(700 + 300 * (crash % 5))).await;
        h = h.restart().await;
        // The "service": a loop task that stopped is replaced by a new one.
        let current = loop_ids.last().cloned().expect("loop task");
        if h.task(&current).last_status == Some(TaskStatus::Stopped) {
            stopped_loops += 1;
            loop_ids = vec![format!("loop-{}", crash + 1)];
        }
        h.assign(&tasks(&loop_ids));
        h.pump(Duration::from_millis(100)).await;
        assert_eq!(h.container_ids_of("steady"), vec![steady_id.clone()]);
        assert_eq!(h.task("steady").last_status, Some(TaskStatus::Running));
    }
    h.pump(Duration::from_secs(5)).await;
    let creates: Vec<String> = h
        .fake
        .calls()
        .into_iter()
        .filter_map(|c| match c {
            Call::Create(name) => Some(name),
            _ => None,
        })
        .collect();
    let unique: HashSet<&String> = creates.iter().collect();
    assert_eq!(
        unique.len(),
        creates.len(),
        "a container was created twice: {creates:?}"
    );
    assert!(stopped_loops >= 3, "the loop went on: {stopped_loops}");
    for id in loop_ids.iter().take(loop_ids.len() - 1) {
        assert_eq!(h.container(id, "loop").exit_code, Some(3));
    }
    assert_eq!(
        h.count(|c| matches!(c, Call::Start(i) if *i == steady_id)),
        1,
        "the steady container was started once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_docker_daemon_restart_stops_tasks_with_exit_codes_and_an_explanation() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container("web", json!({}))]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    h.fake.set_unavailable(Some("connection refused"));
    h.fake.restart_daemon(143);
    let restarted = h.began.elapsed();
    tokio::time::sleep(Duration::from_secs(8)).await;
    h.fake.set_unavailable(None);
    let stopped_at = h.until("t1", TaskStatus::Stopped).await;
    assert!(
        stopped_at - restarted < Duration::from_secs(8 + 6),
        "noticed within the reconnect backoff: {:?}",
        stopped_at - restarted
    );
    let task = h.task("t1");
    assert_eq!(task.stop_code.as_deref(), Some("EssentialContainerExited"));
    let web = h.container("t1", "web");
    assert_eq!(web.exit_code, Some(143));
    let reason = web.reason.unwrap_or_default();
    assert!(reason.contains("Docker daemon"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn an_exit_after_the_daemon_is_back_is_not_blamed_on_it() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container("web", json!({}))]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    let id = h.runtime_id("t1", "web");
    h.fake.set_unavailable(Some("connection refused"));
    // A resync finds the daemon away, the next one finds the container running again.
    tokio::time::sleep(Duration::from_secs(31)).await;
    h.fake.set_unavailable(None);
    tokio::time::sleep(Duration::from_secs(31)).await;
    h.fake.exit(&id, 3);
    h.until("t1", TaskStatus::Stopped).await;
    let web = h.container("t1", "web");
    assert_eq!(web.exit_code, Some(3));
    assert_eq!(web.reason, None, "an exit of its own");
}

#[tokio::test(start_paused = true)]
async fn a_hung_docker_stop_escalates_to_a_kill() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("web", Behavior::running().with_hanging_stop());
    let td = task_definition(json!([container("web", json!({"stopTimeout": 10}))]));
    h.assign(&[new_task(&td, "t1")]);
    let running_at = h.until("t1", TaskStatus::Running).await;
    h.stop_task("t1", &["t1"]);
    let stopped_at = h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(
        stopped_at - running_at,
        Duration::from_secs(10) + STOP_CALL_GRACE
    );
    assert_eq!(
        h.container("t1", "web").exit_code,
        Some(SIGKILL_EXIT_CODE as i32)
    );
    assert_eq!(h.count(|c| matches!(c, Call::Kill(_))), 1);
    assert_eq!(h.task("t1").stop_code.as_deref(), Some("UserInitiated"));
}

#[tokio::test(start_paused = true)]
async fn a_wedged_daemon_cannot_hold_a_task_in_stopping_past_its_bound() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container("web", json!({"stopTimeout": 10}))]));
    h.assign(&[new_task(&td, "t1")]);
    let running_at = h.until("t1", TaskStatus::Running).await;
    let id = h.runtime_id("t1", "web");
    h.fake.set_hung(true);
    h.stop_task("t1", &["t1"]);
    let stopped_at = h.until("t1", TaskStatus::Stopped).await;
    assert_eq!(
        stopped_at - running_at,
        Duration::from_secs(10) + STOP_SLACK,
        "STOPPING lasts the stopTimeout plus the slack"
    );
    let reason = h.container("t1", "web").reason.unwrap_or_default();
    assert!(reason.starts_with("CannotStopContainerError"), "{reason}");
    assert!(h.fake.containers()[0].running);
    // The daemon answers again: the agent kept at it and the container stops.
    h.fake.set_hung(false);
    tokio::time::sleep(Duration::from_secs(120)).await;
    let container = h
        .fake
        .containers()
        .into_iter()
        .find(|c| c.id == id)
        .expect("kept until cleanup");
    assert!(!container.running, "stopped in the background");
}

#[tokio::test(start_paused = true)]
async fn pulls_wait_out_a_daemon_restart() {
    let fake = FakeRuntime::new();
    let mut h = Harness::on(fake, config()).await;
    h.fake.set_unavailable(Some("connection refused"));
    let td = task_definition(json!([container("web", json!({"image": "app:1"}))]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Pending).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    h.fake.set_unavailable(None);
    h.until("t1", TaskStatus::Running).await;
    assert_eq!(
        h.count(|c| matches!(c, Call::Create(_))),
        1,
        "created once the image was there"
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_leaves_pending_within_the_pull_timeout_when_the_daemon_never_returns() {
    let fake = FakeRuntime::new();
    let mut h = Harness::on(fake, config()).await;
    h.fake.set_unavailable(Some("connection refused"));
    let td = task_definition(json!([container("web", json!({"image": "app:1"}))]));
    h.assign(&[new_task(&td, "t1")]);
    let pending_at = h.until("t1", TaskStatus::Pending).await;
    let stopped_at = h.until("t1", TaskStatus::Stopped).await;
    let pending = stopped_at - pending_at;
    assert!(
        pending >= DEFAULT_PULL_TIMEOUT && pending <= DEFAULT_PULL_TIMEOUT + Duration::from_secs(6),
        "PENDING lasted {pending:?}"
    );
    let task = h.task("t1");
    assert_eq!(task.stop_code.as_deref(), Some("TaskFailedToStart"));
    let reason = task.stopped_reason.clone().unwrap_or_default();
    assert!(reason.contains("pull image app:1"), "{reason}");
    assert!(reason.contains("connection refused"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn a_create_refused_while_the_daemon_restarts_is_retried() {
    let mut h = Harness::new().await;
    h.fake.fail_next_creates(4);
    let td = task_definition(json!([container("web", json!({}))]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    assert_eq!(h.count(|c| matches!(c, Call::Create(_))), 5);
    assert_eq!(h.fake.containers().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_create_refused_for_longer_than_the_retry_window_fails_the_task() {
    let mut h = Harness::new().await;
    h.fake.fail_next_creates(u32::MAX);
    let td = task_definition(json!([container("web", json!({}))]));
    h.assign(&[new_task(&td, "t1")]);
    let activating_at = h.until("t1", TaskStatus::Activating).await;
    let stopped_at = h.until("t1", TaskStatus::Stopped).await;
    assert!(stopped_at - activating_at <= RETRY_WINDOW + Duration::from_secs(5));
    let task = h.task("t1");
    assert_eq!(task.stop_code.as_deref(), Some("TaskFailedToStart"));
    let reason = task.stopped_reason.clone().unwrap_or_default();
    assert!(reason.starts_with("CannotCreateContainerError"), "{reason}");
}

#[tokio::test(start_paused = true)]
async fn a_stop_requested_while_creates_are_retried_ends_the_task_at_once() {
    let mut h = Harness::new().await;
    h.fake.fail_next_creates(u32::MAX);
    let td = task_definition(json!([container("web", json!({}))]));
    h.assign(&[new_task(&td, "t1")]);
    let activating_at = h.until("t1", TaskStatus::Activating).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    h.stop_task("t1", &["t1"]);
    let stopped_at = h.until("t1", TaskStatus::Stopped).await;
    assert!(stopped_at - activating_at < Duration::from_secs(4));
    assert_eq!(h.task("t1").stop_code.as_deref(), Some("UserInitiated"));
}

#[tokio::test(start_paused = true)]
async fn containers_carry_the_agent_home() {
    let fake = FakeRuntime::new();
    fake.add_image("busybox");
    let mut with_home = config();
    with_home.agent_home = Some("00112233aabbccdd".into());
    let mut h = Harness::on(fake, with_home).await;
    let td = task_definition(json!([container("web", json!({}))]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    let labels = &h.fake.containers()[0].labels;
    assert_eq!(
        labels
            .get(crate::spec::LABEL_AGENT_HOME)
            .map(String::as_str),
        Some("00112233aabbccdd")
    );
}
