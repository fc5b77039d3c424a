//! RunTask calls queued behind a cluster's placement turn: placed together in one commit, each
//! answered with its own tasks and failures, never beyond what the instances hold.

use super::fits;
use crate::app::App;
use crate::test_support::{app, call, ok};
use berth_store::WriteLimits;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// A cluster `demo` with two instances of 1024 MiB and a task definition `small` of 100 MiB:
/// 20 tasks fit in all.
async fn setup(app: &Arc<App>) {
    setup_with(app, 1024).await;
}

async fn setup_with(app: &Arc<App>, memory: i64) {
    ok(app, "CreateCluster", json!({"clusterName": "demo"})).await;
    for _ in 0..2 {
        ok(
            app,
            "RegisterContainerInstance",
            json!({"cluster": "demo", "totalResources": [
                {"name": "CPU", "type": "INTEGER", "integerValue": 4096},
                {"name": "MEMORY", "type": "INTEGER", "integerValue": memory}
            ]}),
        )
        .await;
    }
    ok(
        app,
        "RegisterTaskDefinition",
        json!({"family": "small", "containerDefinitions": [
            {"name": "app", "image": "busybox", "memory": 100, "essential": true}
        ]}),
    )
    .await;
}

/// Starts RunTask calls with `bodies` while the test holds the cluster's turn, and lets them
/// go once all are queued.
async fn queued_together(app: &Arc<App>, bodies: Vec<Value>) -> Vec<Value> {
    let turn = app.placement_turn("demo").await;
    let calls: Vec<_> = bodies
        .into_iter()
        .map(|body| {
            let app = Arc::clone(app);
            tokio::spawn(async move { call(&app, "RunTask", body).await })
        })
        .collect();
    let queue = app.run_queue("demo");
    let expected = calls.len();
    for _ in 0..500 {
        if queue.waiting() == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        queue.waiting(),
        expected,
        "every call queued behind the turn"
    );
    drop(turn);
    let mut answers = Vec::new();
    for c in calls {
        answers.push(c.await.expect("join").expect("RunTask"));
    }
    answers
}

/// The distinct `version`s (commit revisions) of the tasks the calls were answered.
fn versions(answers: &[Value]) -> BTreeSet<i64> {
    answers
        .iter()
        .flat_map(|a| a["tasks"].as_array().expect("tasks").clone())
        .map(|t| t["version"].as_i64().expect("version"))
        .collect()
}

fn arns(answer: &Value) -> BTreeSet<String> {
    answer["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["taskArn"].as_str().expect("taskArn").to_string())
        .collect()
}

async fn tasks_in_cluster(app: &Arc<App>) -> usize {
    let listed = ok(app, "ListTasks", json!({"cluster": "demo"})).await;
    listed["taskArns"].as_array().expect("taskArns").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_queued_behind_a_turn_share_one_commit_and_never_overfill_an_instance() {
    let app = app().await;
    setup(&app).await;
    let body = json!({"cluster": "demo", "taskDefinition": "small", "count": 10});
    let answers = queued_together(&app, vec![body; 4]).await;

    let placed: Vec<usize> = answers.iter().map(|a| arns(a).len()).collect();
    assert_eq!(
        placed.iter().sum::<usize>(),
        20,
        "what fits, and no more: {placed:?}"
    );
    let all: BTreeSet<String> = answers.iter().flat_map(arns).collect();
    assert_eq!(all.len(), 20, "no task answered to two calls");
    let versions = versions(&answers);
    assert_eq!(
        versions.len(),
        1,
        "one commit for all four calls: {versions:?}"
    );
    for answer in &answers {
        let failures = answer["failures"].as_array().expect("failures");
        if arns(answer).len() < 10 {
            assert!(
                failures.iter().any(|f| f["reason"] == "RESOURCE:MEMORY"),
                "a call short of its count says why: {answer}"
            );
        } else {
            assert!(failures.is_empty(), "{answer}");
        }
    }
    let instances = ok(&app, "ListContainerInstances", json!({"cluster": "demo"})).await;
    let described = ok(
        &app,
        "DescribeContainerInstances",
        json!({"cluster": "demo", "containerInstances": instances["containerInstanceArns"]}),
    )
    .await;
    for instance in described["containerInstances"].as_array().expect("list") {
        assert_eq!(instance["runningTasksCount"].as_i64().unwrap_or(0), 0);
        assert_eq!(instance["pendingTasksCount"], 10, "{instance}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_queued_beside_its_first_call_answers_the_same_tasks() {
    let app = app().await;
    setup(&app).await;
    let tokened = json!({"cluster": "demo", "taskDefinition": "small", "count": 3,
                         "clientToken": "once"});
    let other = json!({"cluster": "demo", "taskDefinition": "small", "count": 2});
    let answers = queued_together(&app, vec![tokened.clone(), other, tokened]).await;

    assert_eq!(arns(&answers[0]).len(), 3);
    assert_eq!(
        arns(&answers[0]),
        arns(&answers[2]),
        "the retry answers the first's tasks"
    );
    assert_eq!(arns(&answers[1]).len(), 2);
    assert_eq!(
        tasks_in_cluster(&app).await,
        5,
        "the retry started nothing more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_caller_went_away_while_queued_places_nothing() {
    let app = app().await;
    setup(&app).await;
    let turn = app.placement_turn("demo").await;
    let gone = {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            call(
                &app,
                "RunTask",
                json!({"cluster": "demo", "taskDefinition": "small", "count": 4}),
            )
            .await
        })
    };
    let queue = app.run_queue("demo");
    for _ in 0..500 {
        if queue.waiting() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(queue.waiting(), 1);
    gone.abort();
    assert!(gone.await.expect_err("aborted").is_cancelled());
    drop(turn);

    let answer = ok(
        &app,
        "RunTask",
        json!({"cluster": "demo", "taskDefinition": "small", "count": 1}),
    )
    .await;
    assert_eq!(arns(&answer).len(), 1);
    assert_eq!(
        tasks_in_cluster(&app).await,
        1,
        "the abandoned call placed nothing"
    );
    assert_eq!(queue.waiting(), 0);
}

#[test]
fn a_group_holds_the_guards_one_transaction_of_the_store_takes() {
    let etcd = WriteLimits {
        max_ops: 128,
        max_bytes: 1536 << 10,
    };
    assert!(fits(60, 6, etcd), "six RunTasks of 10: 126 guards");
    assert!(!fits(70, 7, etcd), "seven: 147 guards");
    let few_ops = WriteLimits {
        max_ops: 20,
        max_bytes: usize::MAX,
    };
    assert!(fits(9, 2, few_ops), "18 task guards and 2 token guards");
    assert!(!fits(10, 1, few_ops), "21 guards");
    assert!(fits(10_000, 1_000, WriteLimits::UNLIMITED));
}

/// On a real etcd, whose transactions take at most 128 guards and 1.5 MiB.
#[cfg(feature = "etcd")]
mod on_etcd {
    use super::*;
    use berth_store::etcd::local::LocalEtcd;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn eight_calls_of_ten_take_two_commits_within_etcds_128_guards() {
        let etcd = LocalEtcd::start(1).expect("a local etcd");
        let app = crate::test_support::app_on_etcd(&etcd).await;
        setup_with(&app, 10_000).await;
        let body = json!({"cluster": "demo", "taskDefinition": "small", "count": 10});
        let answers = queued_together(&app, vec![body; 8]).await;

        let all: BTreeSet<String> = answers.iter().flat_map(arns).collect();
        assert_eq!(all.len(), 80, "every call placed its ten");
        let versions = versions(&answers);
        assert_eq!(versions.len(), 2, "six calls, then two: {versions:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn calls_past_etcds_request_size_go_in_a_later_commit() {
        let etcd = LocalEtcd::start(1).expect("a local etcd");
        let app = crate::test_support::app_on_etcd(&etcd).await;
        setup_with(&app, 10_000).await;
        // About 28 KiB a task: 50 tags at their longest and 8 KiB of environment overrides.
        let tags: Vec<Value> = (0..50)
            .map(|i| json!({"key": format!("{i:03}{}", "k".repeat(125)), "value": "v".repeat(256)}))
            .collect();
        let overrides = json!({"containerOverrides": [{"name": "app", "environment": [
            {"name": "FILL", "value": "x".repeat(7900)}
        ]}]});
        let body = json!({"cluster": "demo", "taskDefinition": "small", "count": 10,
                          "tags": tags, "overrides": overrides});
        let answers = queued_together(&app, vec![body; 6]).await;

        let all: BTreeSet<String> = answers.iter().flat_map(arns).collect();
        assert_eq!(
            all.len(),
            60,
            "every call placed its ten, none refused by etcd"
        );
        let versions = versions(&answers);
        assert!(
            versions.len() >= 2,
            "six calls of 280 KiB do not fit one 1.5 MiB request: {versions:?}"
        );
        assert_eq!(tasks_in_cluster(&app).await, 60);
    }
}
