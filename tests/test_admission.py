"""The admission policy through boto3: task definition fields that grant root on a host are
refused at RegisterTaskDefinition until a cluster's tags allow them (nothing stored), and at
RunTask, StartTask and CreateService on a cluster whose tags do not allow them; allowed where
the tags do. The agent side (its --allow-* flags) is covered by the Rust tests on the fake
runtime."""

import pytest

from helpers import AGENT_ATTRIBUTES, expect_error, register_instance

# (id, task definition members, container members, field ECS names, allowing tag)
CASES = [
    ("privileged", {}, {"privileged": True}, "containerDefinitions[0].privileged", ("berth:allow-privileged", "true")),
    ("host-network", {"networkMode": "host"}, {}, "networkMode", ("berth:allow-host-network", "true")),
    ("host-pid", {"pidMode": "host"}, {}, "pidMode", ("berth:allow-host-pid", "true")),
    ("host-ipc", {"ipcMode": "host"}, {}, "ipcMode", ("berth:allow-host-ipc", "true")),
    (
        "bind-mount",
        {"volumes": [{"name": "etc", "host": {"sourcePath": "/srv/../etc"}}]},
        {"mountPoints": [{"sourceVolume": "etc", "containerPath": "/host-etc"}]},
        "volumes[0].host.sourcePath",
        ("berth:allow-bind-mounts", "/srv /etc"),
    ),
    (
        "docker-volume-bind",
        {
            "volumes": [
                {
                    "name": "bound",
                    "dockerVolumeConfiguration": {
                        "scope": "task",
                        "driver": "local",
                        "driverOpts": {"type": "none", "o": "bind", "device": "/etc"},
                    },
                }
            ]
        },
        {},
        "volumes[0].dockerVolumeConfiguration.driverOpts",
        ("berth:allow-docker-volume-binds", "true"),
    ),
    (
        "devices",
        {},
        {"linuxParameters": {"devices": [{"hostPath": "/dev/fuse"}]}},
        "containerDefinitions[0].linuxParameters.devices[0]",
        ("berth:allow-devices", "true"),
    ),
    (
        "capabilities",
        {},
        {"linuxParameters": {"capabilities": {"add": ["CHOWN", "SYS_ADMIN"]}}},
        "containerDefinitions[0].linuxParameters.capabilities.add[1]",
        ("berth:allow-capabilities", "NET_ADMIN SYS_ADMIN"),
    ),
    (
        "unconfined",
        {},
        {"dockerSecurityOptions": ["no-new-privileges", "seccomp=unconfined"]},
        "containerDefinitions[0].dockerSecurityOptions[1]",
        ("berth:allow-unconfined", "true"),
    ),
]


def container(**extra):
    return {"name": "app", "image": "busybox", "memory": 64, **extra}


def register(ecs, family, task, members):
    return ecs.register_task_definition(family=family, containerDefinitions=[container(**members)], **task)


def cluster_with_instance(ecs, name, tags=None):
    ecs.create_cluster(clusterName=name, **({"tags": [{"key": k, "value": v} for k, v in tags]} if tags else {}))
    # As an agent registers: the docker-volume case needs Docker Remote API 1.25.
    return register_instance(ecs, name, attributes=AGENT_ATTRIBUTES)["containerInstanceArn"]


@pytest.mark.parametrize("case_id,task,members,field,tag", CASES, ids=[c[0] for c in CASES])
def test_a_root_granting_field_runs_only_where_a_cluster_tag_allows_it(ecs, unique, case_id, task, members, field, tag):
    family = unique(f"risky-{case_id}")

    err = expect_error("ClientException", register, ecs, family, task, members)
    message = err.response["Error"]["Message"]
    assert "No ACTIVE cluster allows" in message, message
    assert f"{field} is refused" in message and tag[0] in message, message
    assert ecs.list_task_definitions(familyPrefix=family)["taskDefinitionArns"] == []

    closed = unique(f"closed-{case_id}")
    closed_instance = cluster_with_instance(ecs, closed)
    opened = unique(f"open-{case_id}")
    cluster_with_instance(ecs, opened, [tag])
    td = register(ecs, family, task, members)["taskDefinition"]
    assert td["revision"] == 1

    err = expect_error("ClientException", ecs.run_task, cluster=closed, taskDefinition=family)
    message = err.response["Error"]["Message"]
    assert f"Cluster '{closed}' does not allow" in message and f"{field} is refused" in message, message
    assert tag[0] in message, message
    expect_error(
        "ClientException",
        ecs.start_task,
        cluster=closed,
        taskDefinition=family,
        containerInstances=[closed_instance],
    )
    expect_error("ClientException", ecs.create_service, cluster=closed, serviceName="svc", taskDefinition=family, desiredCount=1)
    assert ecs.list_tasks(cluster=closed)["taskArns"] == []
    assert ecs.list_services(cluster=closed)["serviceArns"] == []

    ran = ecs.run_task(cluster=opened, taskDefinition=family)
    assert ran["failures"] == [] and len(ran["tasks"]) == 1, ran


def test_a_tag_added_later_allows_and_its_removal_refuses_again(ecs, unique):
    family = unique("later")
    name = unique("later")
    cluster_with_instance(ecs, name)
    # A capability no other test of the module allows (they share one server).
    members = {"linuxParameters": {"capabilities": {"add": ["SYS_PTRACE"]}}}
    expect_error("ClientException", register, ecs, family, {}, members)

    arn = ecs.describe_clusters(clusters=[name])["clusters"][0]["clusterArn"]
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "berth:allow-capabilities", "value": "SYS_PTRACE"}])
    register(ecs, family, {}, members)
    assert len(ecs.run_task(cluster=name, taskDefinition=family)["tasks"]) == 1

    ecs.untag_resource(resourceArn=arn, tagKeys=["berth:allow-capabilities"])
    err = expect_error("ClientException", ecs.run_task, cluster=name, taskDefinition=family)
    message = err.response["Error"]["Message"]
    assert "containerDefinitions[0].linuxParameters.capabilities.add[0] is refused" in message, message
    assert "berth:allow-capabilities" in message and "--allow-capability SYS_PTRACE" in message, message


def test_a_cluster_that_forbids_root_refuses_root_users_at_run_task(ecs, unique):
    strict = unique("strict")
    cluster_with_instance(ecs, strict, [("berth:forbid-root-user", "true")])
    relaxed = unique("relaxed")
    cluster_with_instance(ecs, relaxed)
    as_root = unique("as-root")
    # Root is allowed by default: registration does not depend on the clusters.
    register(ecs, as_root, {}, {"user": "0:0"})
    err = expect_error("ClientException", ecs.run_task, cluster=strict, taskDefinition=as_root)
    message = err.response["Error"]["Message"]
    assert "containerDefinitions[0].user is refused" in message and "berth:forbid-root-user" in message, message
    assert len(ecs.run_task(cluster=relaxed, taskDefinition=as_root)["tasks"]) == 1

    as_app = unique("as-app")
    register(ecs, as_app, {}, {"user": "1000:0"})
    assert len(ecs.run_task(cluster=strict, taskDefinition=as_app)["tasks"]) == 1


def test_definitions_that_grant_nothing_need_no_cluster_tag(ecs, unique):
    members = {
        "user": "root",
        "privileged": False,
        "linuxParameters": {"capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]}},
        "dockerSecurityOptions": ["no-new-privileges"],
    }
    td = register(ecs, unique("quiet"), {"networkMode": "bridge", "volumes": [{"name": "scratch", "host": {}}]}, members)
    assert td["taskDefinition"]["revision"] == 1
