//! The agent's admission check: for every root-granting field, an agent without its flag
//! refuses the task before creating (or pulling) anything — STOPPED, TaskFailedToStart, a
//! reason naming the field and the flag — and an agent with the flag runs it.

use super::*;
use berth_core::task_definition::admission::Allowances;

/// One root-granting field: task members, the container's members, the field path, the flag
/// that allows it, and the allowance that flag sets.
struct Case {
    task: Value,
    container: Value,
    field: &'static str,
    flag: &'static str,
    allow: fn(&mut Allowances),
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            task: json!({}),
            container: json!({"privileged": true}),
            field: "containerDefinitions[0].privileged",
            flag: "--allow-privileged",
            allow: |a| a.privileged = true,
        },
        Case {
            task: json!({"networkMode": "host"}),
            container: json!({}),
            field: "networkMode",
            flag: "--allow-host-network",
            allow: |a| a.host_network = true,
        },
        Case {
            task: json!({"pidMode": "host"}),
            container: json!({}),
            field: "pidMode",
            flag: "--allow-host-pid",
            allow: |a| a.host_pid = true,
        },
        Case {
            task: json!({"ipcMode": "host"}),
            container: json!({}),
            field: "ipcMode",
            flag: "--allow-host-ipc",
            allow: |a| a.host_ipc = true,
        },
        Case {
            task: json!({"volumes": [{"name": "logs", "host": {"sourcePath": "/srv/../var/log"}}]}),
            container: json!({"mountPoints": [{"sourceVolume": "logs", "containerPath": "/logs"}]}),
            field: "volumes[0].host.sourcePath",
            flag: "--allow-bind-mount /var/log",
            allow: |a| a.bind_mount_prefixes.push("/var/log".into()),
        },
        Case {
            task: json!({"volumes": [{"name": "b", "dockerVolumeConfiguration": {
                "scope": "task", "driver": "local",
                "driverOpts": {"type": "none", "o": "bind", "device": "/etc"}}}]}),
            container: json!({"mountPoints": [{"sourceVolume": "b", "containerPath": "/b"}]}),
            field: "volumes[0].dockerVolumeConfiguration.driverOpts",
            flag: "--allow-docker-volume-binds",
            allow: |a| a.docker_volume_binds = true,
        },
        Case {
            task: json!({}),
            container: json!({"linuxParameters": {"devices": [{"hostPath": "/dev/fuse"}]}}),
            field: "containerDefinitions[0].linuxParameters.devices[0]",
            flag: "--allow-devices",
            allow: |a| a.devices = true,
        },
        Case {
            task: json!({}),
            container: json!({"linuxParameters": {"capabilities": {"add": ["NET_ADMIN"]}}}),
            field: "containerDefinitions[0].linuxParameters.capabilities.add[0]",
            flag: "--allow-capability NET_ADMIN",
            allow: |a| a.capabilities.push("net_admin".into()),
        },
        Case {
            task: json!({}),
            container: json!({"dockerSecurityOptions": ["apparmor=unconfined"]}),
            field: "containerDefinitions[0].dockerSecurityOptions[0]",
            flag: "--allow-unconfined",
            allow: |a| a.unconfined = true,
        },
    ]
}

fn definition(case: &Case) -> TaskDefinition {
    let mut td = json!({
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
        "family": "web",
        "revision": 1,
        "containerDefinitions": [container("web", case.container.clone())],
    });
    td.as_object_mut()
        .expect("object")
        .extend(case.task.as_object().cloned().unwrap_or_default());
    serde_json::from_value(td).expect("task definition")
}

async fn harness(allowances: Allowances) -> Harness {
    let fake = FakeRuntime::new();
    fake.add_image("busybox");
    let mut config = config();
    config.allowances = allowances;
    Harness::on(fake, config).await
}

#[tokio::test(start_paused = true)]
async fn an_agent_without_the_flag_refuses_the_task_before_creating_any_container() {
    for case in cases() {
        // Every allowance but this field's: only its own flag admits it.
        let mut others = Allowances {
            privileged: true,
            host_network: true,
            host_pid: true,
            host_ipc: true,
            bind_mount_prefixes: vec!["/srv".into()],
            docker_volume_binds: true,
            devices: true,
            capabilities: vec!["SYS_TIME".into()],
            unconfined: true,
            forbid_root_user: false,
        };
        match case.field {
            "containerDefinitions[0].privileged" => others.privileged = false,
            "networkMode" => others.host_network = false,
            "pidMode" => others.host_pid = false,
            "ipcMode" => others.host_ipc = false,
            "volumes[0].dockerVolumeConfiguration.driverOpts" => others.docker_volume_binds = false,
            "containerDefinitions[0].linuxParameters.devices[0]" => others.devices = false,
            "containerDefinitions[0].dockerSecurityOptions[0]" => others.unconfined = false,
            _ => {}
        }
        for allowances in [Allowances::default(), others] {
            let mut h = harness(allowances).await;
            h.assign(&[new_task(&definition(&case), "t1")]);
            h.until("t1", TaskStatus::Stopped).await;
            assert_eq!(h.statuses("t1"), path(&["PENDING"]), "{}", case.field);
            let task = h.task("t1");
            assert_eq!(task.stop_code.as_deref(), Some("TaskFailedToStart"));
            let reason = task.stopped_reason.clone().expect("reason");
            assert!(
                reason.starts_with(&format!(
                    "CannotCreateContainerError: {} is refused by this agent",
                    case.field
                )),
                "{reason}"
            );
            assert!(
                reason.contains(&format!("Start the agent with {} to allow it.", case.flag)),
                "{reason}"
            );
            assert_eq!(
                h.container("t1", "web").reason.as_deref(),
                Some(reason.as_str())
            );
            assert_eq!(h.count(|c| matches!(c, Call::Create(_))), 0, "{reason}");
            assert_eq!(h.count(|c| matches!(c, Call::Pull(_))), 0, "{reason}");
            assert!(h.fake.containers().is_empty());
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_agent_with_the_flag_runs_the_task() {
    for case in cases() {
        let mut allowances = Allowances::default();
        (case.allow)(&mut allowances);
        let mut h = harness(allowances).await;
        h.assign(&[new_task(&definition(&case), "t1")]);
        h.until("t1", TaskStatus::Running).await;
        assert_eq!(
            h.count(|c| matches!(c, Call::Create(_))),
            1,
            "{}",
            case.field
        );
        assert!(h.task("t1").stopped_reason.is_none(), "{}", case.field);
    }
}

#[tokio::test(start_paused = true)]
async fn every_refused_field_is_named_in_the_reason() {
    let mut h = harness(Allowances::default()).await;
    let td: TaskDefinition = serde_json::from_value(json!({
        "taskDefinitionArn": "arn:aws:ecs:us-east-1:000000000000:task-definition/web:1",
        "family": "web", "revision": 1, "networkMode": "host",
        "containerDefinitions": [
            container("web", json!({})),
            container("tools", json!({"essential": false, "privileged": true}))
        ]
    }))
    .expect("task definition");
    h.assign(&[new_task(&td, "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    let reason = h.task("t1").stopped_reason.clone().expect("reason");
    assert!(
        reason.contains("networkMode is refused by this agent")
            && reason.contains("--allow-host-network")
            && reason.contains("containerDefinitions[1].privileged is refused by this agent")
            && reason.contains("--allow-privileged"),
        "{reason}"
    );
    assert_eq!(h.count(|c| matches!(c, Call::Create(_))), 0);
}

#[tokio::test(start_paused = true)]
async fn an_agent_that_forbids_root_refuses_root_users_and_runs_others() {
    let forbid = Allowances {
        forbid_root_user: true,
        ..Allowances::default()
    };
    let td = |user: &str| task_definition(json!([container("web", json!({"user": user}))]));
    let mut h = harness(forbid.clone()).await;
    h.assign(&[new_task(&td("root:root"), "t1")]);
    h.until("t1", TaskStatus::Stopped).await;
    let reason = h.task("t1").stopped_reason.clone().expect("reason");
    assert!(
        reason.contains("containerDefinitions[0].user is refused by this agent")
            && reason.contains("start the agent without --forbid-root-user"),
        "{reason}"
    );
    assert_eq!(h.task("t1").stop_code.as_deref(), Some("TaskFailedToStart"));
    assert_eq!(h.count(|c| matches!(c, Call::Create(_))), 0);

    let mut h = harness(forbid).await;
    h.assign(&[new_task(&td("1000"), "t2")]);
    h.until("t2", TaskStatus::Running).await;
    let mut h = harness(Allowances::default()).await;
    h.assign(&[new_task(&td("0"), "t3")]);
    h.until("t3", TaskStatus::Running).await;
}
