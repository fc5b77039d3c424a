//! The happy path and the running task: PENDING → ACTIVATING → RUNNING, pulls, bindings,
//! non-essential exits, health reports, idempotent desired states.

use super::*;
use crate::runtime::fake::Behavior;
use crate::runtime::Health;

#[tokio::test(start_paused = true)]
async fn a_task_goes_through_pending_and_activating_to_running_with_its_bindings() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container(
        "web",
        json!({"portMappings": [{"containerPort": 80, "hostPort": 0}, {"containerPort": 53, "hostPort": 5353, "protocol": "udp"}]})
    )]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    assert_eq!(h.statuses("t1"), ["PENDING", "ACTIVATING", "RUNNING"]);
    let web = h.container("t1", "web");
    assert_eq!(web.last_status, Some(TaskStatus::Running));
    let runtime_id = web.runtime_id.clone().expect("runtime id");
    let state = h
        .fake
        .containers()
        .into_iter()
        .find(|c| c.id == runtime_id)
        .expect("container");
    assert!(state.running);
    assert_eq!(state.name, "berth-web-1-web-t1");
    let bindings = web.network_bindings.expect("bindings");
    assert_eq!(bindings.len(), 2);
    assert_eq!(bindings[0].container_port, Some(80));
    assert!(
        bindings[0].host_port.is_some_and(|p| p >= 32768),
        "{bindings:?}"
    );
    assert_eq!(bindings[1].host_port, Some(5353));
    assert_eq!(bindings[1].protocol.as_deref(), Some("udp"));
    assert!(web.image_digest.is_some());
    let task = h.task("t1");
    assert!(task.pull_started_at.is_some() && task.pull_stopped_at.is_some());
    assert!(task.started_at.is_some());
    assert_eq!(
        h.count(|c| matches!(c, Call::Pull(_))),
        1,
        "ECS's default pull behavior pulls even an image the host has"
    );
}

/// A harness whose fake has `busybox` but cannot pull it, with `behavior`.
async fn unpullable(behavior: crate::engine::PullBehavior) -> Harness {
    let fake = FakeRuntime::new();
    fake.add_image("busybox");
    fake.fail_pull("busybox", "registry unreachable");
    let mut config = config();
    config.pull_behavior = behavior;
    Harness::on(fake, config).await
}

#[tokio::test(start_paused = true)]
async fn each_pull_behavior_pulls_when_ecs_says_and_falls_back_only_in_default() {
    use crate::engine::PullBehavior;
    let td = task_definition(json!([container("web", json!({}))]));

    // default: the pull fails, the host's image runs.
    let mut h = unpullable(PullBehavior::Default).await;
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    assert_eq!(h.count(|c| matches!(c, Call::Pull(_))), 1);

    // always: the failed pull fails the task.
    let mut h = unpullable(PullBehavior::Always).await;
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    let reason = h.container("t1", "web").reason.expect("reason");
    assert!(
        reason.contains("CannotPullContainerError") && reason.contains("registry unreachable"),
        "{reason}"
    );

    // prefer-cached: the host's image, no pull.
    let mut h = unpullable(PullBehavior::PreferCached).await;
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    assert_eq!(h.count(|c| matches!(c, Call::Pull(_))), 0);

    // once: pulled by the first task that needs it, then the host's.
    let fake = FakeRuntime::new();
    let mut config = config();
    config.pull_behavior = PullBehavior::Once;
    let mut h = Harness::on(fake, config).await;
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    h.assign(&[new_task(&td, "t1"), new_task(&td, "t2")]);
    h.until("t2", TaskStatus::Running).await;
    assert_eq!(h.count(|c| matches!(c, Call::Pull(_))), 1);
}

#[tokio::test(start_paused = true)]
async fn an_image_that_is_not_on_the_host_is_pulled_before_the_containers_are_created() {
    let fake = FakeRuntime::new();
    fake.set_pull_delay(Duration::from_secs(4));
    let mut h = Harness::on(fake, config()).await;
    let td = task_definition(json!([
        container("web", json!({"image": "nginx:1"})),
        container("sidecar", json!({"image": "nginx:1", "essential": false}))
    ]));
    h.assign(&[new_task(&td, "t1")]);
    let at = h.until("t1", TaskStatus::Running).await;
    assert!(at >= Duration::from_secs(4));
    assert_eq!(
        h.count(|c| matches!(c, Call::Pull(i) if i == "nginx:1")),
        1,
        "one pull per image"
    );
    let pull = h.position(|c| matches!(c, Call::Pull(_)));
    let create = h.position(|c| matches!(c, Call::Create(_)));
    assert!(pull < create);
    let task = h.task("t1");
    let (started, stopped) = (
        task.pull_started_at.expect("start"),
        task.pull_stopped_at.expect("stop"),
    );
    assert!(stopped >= started);
}

#[tokio::test(start_paused = true)]
async fn a_non_essential_container_exit_is_only_a_container_report() {
    let mut h = Harness::new().await;
    h.fake
        .set_behavior("helper", Behavior::exits(Duration::from_secs(10), 1));
    let td = task_definition(json!([
        container("web", json!({})),
        container("helper", json!({"essential": false}))
    ]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    h.drain().await;
    assert_eq!(h.statuses("t1"), ["PENDING", "ACTIVATING", "RUNNING"]);
    let helper = h.container("t1", "helper");
    assert_eq!(helper.last_status, Some(TaskStatus::Stopped));
    assert_eq!(helper.exit_code, Some(1));
    assert_eq!(
        h.container("t1", "web").last_status,
        Some(TaskStatus::Running)
    );
    assert_eq!(h.task("t1").desired_status, Some(TaskStatus::Running));
}

#[tokio::test(start_paused = true)]
async fn health_changes_are_reported_and_make_the_task_health() {
    let mut h = Harness::new().await;
    h.fake.set_behavior(
        "web",
        Behavior::running().with_health(&[
            (Duration::from_secs(15), Health::Healthy),
            (Duration::from_secs(90), Health::Unhealthy),
        ]),
    );
    let td = task_definition(json!([container(
        "web",
        json!({"healthCheck": {"command": ["CMD-SHELL", "true"], "interval": 5}})
    )]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    assert_eq!(h.task("t1").health_status, Some(HealthStatus::Unknown));
    while h.task("t1").health_status != Some(HealthStatus::Healthy) {
        h.next().await.expect("health report");
    }
    assert_eq!(
        h.container("t1", "web").health_status,
        Some(HealthStatus::Healthy)
    );
    while h.task("t1").health_status != Some(HealthStatus::Unhealthy) {
        h.next().await.expect("health report");
    }
    assert!(h.began.elapsed() >= Duration::from_secs(90));
    // An unhealthy standalone task keeps running, as in ECS.
    h.drain().await;
    assert_eq!(h.task("t1").last_status, Some(TaskStatus::Running));
}

#[tokio::test(start_paused = true)]
async fn the_same_desired_state_applied_again_runs_each_task_once() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container("web", json!({}))]));
    let task = new_task(&td, "t1");
    h.assign(std::slice::from_ref(&task));
    h.assign(std::slice::from_ref(&task));
    h.until("t1", TaskStatus::Running).await;
    h.assign(std::slice::from_ref(&task));
    h.drain().await;
    assert_eq!(h.count(|c| matches!(c, Call::Create(_))), 1);
    assert_eq!(h.engine.active_tasks(), vec![task_arn("t1")]);
}

#[tokio::test(start_paused = true)]
async fn several_tasks_run_side_by_side() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container("web", json!({}))]));
    h.assign(&[new_task(&td, "t1"), new_task(&td, "t2")]);
    h.until("t1", TaskStatus::Running).await;
    h.until("t2", TaskStatus::Running).await;
    assert_eq!(h.fake.containers().iter().filter(|c| c.running).count(), 2);
}

#[tokio::test(start_paused = true)]
async fn containers_carry_the_labels_of_their_task_and_instance() {
    let mut h = Harness::new().await;
    let td = task_definition(json!([container(
        "web",
        json!({"dockerLabels": {"team": "blue"}})
    )]));
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Running).await;
    let spec = h.fake.specs().pop().expect("spec");
    assert_eq!(
        spec.labels
            .get(crate::spec::LABEL_CONTAINER_INSTANCE)
            .map(String::as_str),
        Some(INSTANCE)
    );
    assert_eq!(
        spec.labels.get(crate::spec::LABEL_TASK_ARN),
        Some(&task_arn("t1"))
    );
    assert_eq!(
        spec.labels
            .get(crate::spec::LABEL_CONTAINER_NAME)
            .map(String::as_str),
        Some("web")
    );
    assert_eq!(spec.labels.get("team").map(String::as_str), Some("blue"));
}
