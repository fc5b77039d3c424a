//! On a real etcd, whose transactions take 128 guards: the services' targets registered, and
//! the drained ones swept, in more target groups than one transaction holds.

use super::{ok, stored_group, target_group};
use crate::elbv2::service_targets::{sync_targets, Seen};
use crate::test_support::app_on_etcd;
use berth_store::etcd::local::LocalEtcd;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_of_more_services_than_one_transaction_takes_are_all_registered() {
    let etcd = LocalEtcd::start(1).expect("a local etcd");
    let app = app_on_etcd(&etcd).await;
    let groups = 140;
    let mut seen = Seen::default();
    for i in 0..groups {
        let arn = target_group(&app, &format!("g{i}"), "HTTP", "ip").await;
        // Service s{i}'s task wants its address in its service's group.
        let task = format!("arn:aws:ecs:us-east-1:000000000000:task/demo/t{i}");
        seen.wanted
            .insert((arn, "10.0.0.1".into(), 8080), task.clone());
        seen.services_of
            .insert(task, ("demo".into(), format!("s{i}")));
    }
    let changes = sync_targets(&app, &seen, app.now()).await.expect("sync");
    assert_eq!(changes.len(), groups, "a change for each service's group");
    assert!(changes.values().all(|&c| c == (1, 0)), "{changes:?}");
    for i in 0..groups {
        let group = stored_group(&app, &format!("g{i}"));
        assert_eq!(group.targets.len(), 1, "g{i}");
    }
    // Nothing more to change: the next pass writes nothing.
    let again = sync_targets(&app, &seen, app.now()).await.expect("sync");
    assert!(again.is_empty(), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drained_targets_of_more_groups_than_one_transaction_takes_all_go() {
    let etcd = LocalEtcd::start(1).expect("a local etcd");
    let app = app_on_etcd(&etcd).await;
    let groups = 140;
    for i in 0..groups {
        let name = format!("g{i}");
        let arn = target_group(&app, &name, "HTTP", "ip").await;
        let target = [
            ("TargetGroupArn", arn.as_str()),
            ("Targets.member.1.Id", "10.0.0.1"),
        ];
        ok(&app, "RegisterTargets", &target).await;
        // Draining for the default delay of 300 s.
        ok(&app, "DeregisterTargets", &target).await;
        assert_eq!(stored_group(&app, &name).targets.len(), 1);
    }
    // All their delays run out at once.
    super::sweep_drained(&app, app.now() + 301.0)
        .await
        .expect("sweep");
    for i in 0..groups {
        let group = stored_group(&app, &format!("g{i}"));
        assert!(group.targets.is_empty(), "g{i}: {:?}", group.targets);
    }
}
