//! An agent given several replicas of the server (pretend ones): it registers through the
//! first that answers and, when the one it follows dies, moves to the next without
//! registering again or restarting its tasks, resuming its stream from the revision it applied.

use super::*;
use berth_core::model::TaskStatus;

/// A URL nothing listens on.
async fn dead_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    url
}

/// How many containers `fake` was asked to create.
fn creates(fake: &FakeRuntime) -> usize {
    fake.calls()
        .iter()
        .filter(|c| matches!(c, Call::Create(_)))
        .count()
}

fn reported(seen: &Seen, status: &str) -> bool {
    seen.reports
        .iter()
        .any(|r| r.status.as_deref() == Some(status))
}

#[tokio::test]
async fn an_agent_given_a_dead_server_first_registers_through_the_next() {
    let dead = dead_url().await;
    let live = PretendServer::start().await;
    let fake = FakeRuntime::new();
    let data_dir = tempfile::tempdir().expect("temp dir");

    let (stop, agent) = start_agent_on(&[&dead, &live.url], &fake, data_dir.path());
    live.wait("registration", |s| !s.registrations.is_empty())
        .await;
    live.wait("a heartbeat", |s| !s.heartbeats.is_empty()).await;
    live.wait("the stream", |s| !s.desired_queries.is_empty())
        .await;
    assert_eq!(live.seen(|s| s.registrations.len()), 1);
    let kept = crate::identity::load(data_dir.path())
        .expect("load")
        .expect("identity kept");
    assert_eq!(kept.container_instance_arn, INSTANCE_ARN);

    stop.send(()).expect("stop");
    agent.await.expect("joined").expect("agent ran");
}

#[tokio::test]
async fn an_agent_whose_server_dies_moves_to_the_next_replica_as_the_same_instance_with_its_task_running(
) {
    let a = PretendServer::start().await;
    let b = a.replica().await;
    let fake = FakeRuntime::new();
    fake.add_image("busybox");
    let data_dir = tempfile::tempdir().expect("temp dir");

    let (stop, agent) = start_agent_on(&[&a.url, &b.url], &fake, data_dir.path());
    a.wait("registration", |s| !s.registrations.is_empty())
        .await;
    a.desired.send_replace(DesiredState {
        revision: 2,
        tasks: vec![assigned_task()],
    });
    a.wait("RUNNING", |s| reported(s, "RUNNING")).await;
    assert!(
        b.seen(|s| s.registrations.is_empty()
            && s.heartbeats.is_empty()
            && s.desired_queries.is_empty()),
        "the agent uses one replica at a time"
    );

    a.kill();
    b.wait("the stream on the next replica", |s| {
        !s.desired_queries.is_empty()
    })
    .await;
    b.wait("heartbeats on the next replica", |s| {
        s.heartbeats.len() >= 3
    })
    .await;
    let query = b.seen(|s| s.desired_queries[0].clone());
    assert!(
        query.contains("&since=2 "),
        "the stream resumes from the revision applied: {query}"
    );
    assert!(
        b.seen(|s| s.registrations.is_empty()),
        "no second registration"
    );
    assert_eq!(a.seen(|s| s.registrations.len()), 1);
    assert_eq!(creates(&fake), 1, "the task was not started again");
    assert!(fake.containers().iter().all(|c| c.running));

    // The stream from the new replica drives the engine, and the reports go there too.
    let mut stopping = assigned_task();
    Arc::make_mut(&mut stopping.task).desired_status = Some(TaskStatus::Stopped);
    b.desired.send_replace(DesiredState {
        revision: 3,
        tasks: vec![stopping],
    });
    b.wait("STOPPED reported to the next replica", |s| {
        reported(s, "STOPPED")
    })
    .await;
    assert_eq!(creates(&fake), 1);
    assert_eq!(
        crate::identity::load(data_dir.path())
            .expect("load")
            .map(|i| i.container_instance_arn)
            .as_deref(),
        Some(INSTANCE_ARN)
    );

    stop.send(()).expect("stop");
    agent.await.expect("joined").expect("agent ran");
}
