"""Issue 11's task sets on real containers: an EXTERNAL service driven as external blue/green
tooling drives it (CreateTaskSet, UpdateTaskSet, UpdateServicePrimaryTaskSet, DeleteTaskSet),
on `berth up` with the machine's Docker daemon, through boto3 and the official AWS CLI behind
the recording proxy; and DeleteService with force (DRAINING, then INACTIVE)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from botocore.exceptions import ClientError

from harness import LABEL_TASK_ARN, BerthUp, containers_with, wait_until

CLUSTER = "default"
SLEEPER = ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]


def register(ecs: Any, family: str) -> str:
    container = {"name": "main", "image": "busybox", "memory": 32, "essential": True, "command": SLEEPER}
    return ecs.register_task_definition(family=family, containerDefinitions=[container])["taskDefinition"][
        "taskDefinitionArn"
    ]


def task_sets(ecs: Any, service: str, *ids: str, tags: bool = False) -> list[dict]:
    kwargs: dict[str, Any] = {"cluster": CLUSTER, "service": service}
    if ids:
        kwargs["taskSets"] = list(ids)
    if tags:
        kwargs["include"] = ["TAGS"]
    out = ecs.describe_task_sets(**kwargs)
    assert not out["failures"], out["failures"]
    return out["taskSets"]


def task_set(ecs: Any, service: str, set_id: str) -> dict:
    [found] = task_sets(ecs, service, set_id)
    return found


def tasks_of(ecs: Any, service: str) -> list[dict]:
    arns: list[str] = []
    for desired in ("RUNNING", "STOPPED"):
        arns += ecs.list_tasks(cluster=CLUSTER, serviceName=service, desiredStatus=desired)["taskArns"]
    arns = list(dict.fromkeys(arns))
    out: list[dict] = []
    for i in range(0, len(arns), 100):
        out += ecs.describe_tasks(cluster=CLUSTER, tasks=arns[i : i + 100])["tasks"]
    return out


def running_of(tasks: list[dict], set_id: str) -> list[dict]:
    return [t for t in tasks if t.get("startedBy") == set_id and t["lastStatus"] == "RUNNING"]


def steady(ecs: Any, service: str, set_id: str, count: int):
    """The task set once it runs exactly `count` tasks, in STEADY_STATE."""

    def probe():
        found = task_set(ecs, service, set_id)
        ok = (
            found["runningCount"] == count
            and found["pendingCount"] == 0
            and found["computedDesiredCount"] == count
            and found["stabilityStatus"] == "STEADY_STATE"
        )
        return found if ok else None

    return wait_until(probe, 90, f"task set {set_id} steady at {count} tasks", diagnose=lambda: str(task_sets(ecs, service)))


def error_code(call, **kwargs: Any) -> str:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return raised.value.response["Error"]["Code"]


def delete_service(ecs: Any, name: str) -> None:
    try:
        ecs.delete_service(cluster=CLUSTER, service=name, force=True)
    except ClientError:
        pass


def test_blue_green_with_task_sets_on_an_external_service(berth_up: BerthUp, unique):
    ecs = berth_up.ecs
    blue_td, green_td = register(ecs, unique("blue")), register(ecs, unique("green"))
    name = unique("ext")
    try:
        created = ecs.create_service(
            cluster=CLUSTER, serviceName=name, desiredCount=2, deploymentController={"type": "EXTERNAL"}
        )["service"]
        assert created["deploymentController"] == {"type": "EXTERNAL"}
        assert created["deployments"] == [] and created["taskSets"] == []
        assert "taskDefinition" not in created

        blue = ecs.create_task_set(
            cluster=CLUSTER, service=name, taskDefinition=blue_td, externalId="blue",
            scale={"value": 100.0, "unit": "PERCENT"}, tags=[{"key": "color", "value": "blue"}],
        )["taskSet"]
        assert blue["id"].startswith("ecs-svc/") and len(blue["id"]) == len("ecs-svc/") + 19
        assert blue["taskSetArn"].endswith(f":task-set/{CLUSTER}/{name}/{blue['id']}")
        assert blue["status"] == "ACTIVE" and blue["computedDesiredCount"] == 2
        assert blue["externalId"] == "blue" and blue["launchType"] == "EC2"
        assert blue["scale"] == {"value": 100.0, "unit": "PERCENT"}
        assert blue["tags"] == [{"key": "color", "value": "blue"}]
        steady(ecs, name, blue["id"], 2)
        # Real containers, started by the task set, in the service's group.
        blue_tasks = running_of(tasks_of(ecs, name), blue["id"])
        assert len(blue_tasks) == 2
        for task in blue_tasks:
            assert task["group"] == f"service:{name}"
            [container] = containers_with(f"{LABEL_TASK_ARN}={task['taskArn']}")
            assert container["State"]["Running"] is True
        assert ecs.describe_services(cluster=CLUSTER, services=[name])["services"][0]["runningCount"] == 2

        # Green arrives at 0%, then takes the full count beside blue.
        green = ecs.create_task_set(
            cluster=CLUSTER, service=name, taskDefinition=green_td, scale={"value": 0.0, "unit": "PERCENT"}
        )["taskSet"]
        assert green["computedDesiredCount"] == 0
        scaled = ecs.update_task_set(
            cluster=CLUSTER, service=name, taskSet=green["taskSetArn"], scale={"value": 100.0, "unit": "PERCENT"}
        )["taskSet"]
        assert scaled["computedDesiredCount"] == 2
        steady(ecs, name, green["id"], 2)
        service = ecs.describe_services(cluster=CLUSTER, services=[name])["services"][0]
        assert service["runningCount"] == 4
        counts = {s["id"]: (s["runningCount"], s["computedDesiredCount"]) for s in service["taskSets"]}
        assert counts == {blue["id"]: (2, 2), green["id"]: (2, 2)}

        # The AWS CLI switches production traffic to green.
        primary = berth_up.cli(
            "update-service-primary-task-set", "--cluster", CLUSTER, "--service", name,
            "--primary-task-set", green["id"],
        ).json["taskSet"]
        assert primary["status"] == "PRIMARY"
        service = ecs.describe_services(cluster=CLUSTER, services=[name])["services"][0]
        assert service["taskDefinition"] == green_td
        statuses = {s["id"]: s["status"] for s in service["taskSets"]}
        assert statuses == {blue["id"]: "ACTIVE", green["id"]: "PRIMARY"}

        # Blue scales to 0: its containers go, green's stay.
        ecs.update_task_set(cluster=CLUSTER, service=name, taskSet=blue["id"], scale={"value": 0.0, "unit": "PERCENT"})
        steady(ecs, name, blue["id"], 0)
        for task in blue_tasks:
            wait_until(lambda: not containers_with(f"{LABEL_TASK_ARN}={task['taskArn']}", all_states=False), 30,
                       "blue's container to stop")
        deleted = ecs.delete_task_set(cluster=CLUSTER, service=name, taskSet=blue["id"])["taskSet"]
        assert deleted["status"] == "DRAINING"
        wait_until(lambda: [s["id"] for s in task_sets(ecs, name)] == [green["id"]], 30, "blue to be gone")
        missing = ecs.describe_task_sets(cluster=CLUSTER, service=name, taskSets=[blue["id"]])
        assert missing["taskSets"] == [] and missing["failures"][0]["reason"] == "MISSING"

        # desiredCount drives computedDesiredCount (rounded up).
        ecs.update_task_set(cluster=CLUSTER, service=name, taskSet=green["id"], scale={"value": 50.0, "unit": "PERCENT"})
        ecs.update_service(cluster=CLUSTER, service=name, desiredCount=3)
        assert task_set(ecs, name, green["id"])["computedDesiredCount"] == math.ceil(3 * 0.5)
        steady(ecs, name, green["id"], 2)
        [with_tags] = task_sets(ecs, name, green["id"], tags=True)
        assert "tags" not in with_tags  # green was created without tags: ECS omits the empty list
    finally:
        delete_service(ecs, name)


def test_task_set_errors_are_the_ones_ecs_names(berth_up: BerthUp, unique):
    ecs = berth_up.ecs
    td = register(ecs, unique("err"))
    rolling, ext = unique("rolling"), unique("ext")
    try:
        ecs.create_service(cluster=CLUSTER, serviceName=rolling, taskDefinition=td, desiredCount=0)
        ecs.create_service(cluster=CLUSTER, serviceName=ext, desiredCount=1, deploymentController={"type": "EXTERNAL"})
        base = {"cluster": CLUSTER, "taskDefinition": td}
        assert error_code(ecs.create_task_set, service=rolling, **base) == "InvalidParameterException"
        assert error_code(ecs.create_task_set, service=unique("nope"), **base) == "ServiceNotFoundException"
        assert (
            error_code(ecs.create_task_set, service=ext, scale={"value": 101.0, "unit": "PERCENT"}, **base)
            == "InvalidParameterException"
        )
        assert (
            error_code(ecs.update_task_set, cluster=CLUSTER, service=ext, taskSet="ecs-svc/1234567890123456789",
                       scale={"value": 1.0, "unit": "PERCENT"})
            == "TaskSetNotFoundException"
        )
        assert (
            error_code(ecs.update_service, cluster=CLUSTER, service=ext, taskDefinition=td)
            == "InvalidParameterException"
        )
        one = ecs.create_task_set(service=ext, scale={"value": 100.0, "unit": "PERCENT"}, **base)["taskSet"]
        assert (
            error_code(ecs.delete_task_set, cluster=CLUSTER, service=ext, taskSet=one["id"])
            == "InvalidParameterException"
        )
        assert ecs.delete_task_set(cluster=CLUSTER, service=ext, taskSet=one["id"], force=True)["taskSet"]["status"] == "DRAINING"
        assert (
            error_code(ecs.update_task_set, cluster=CLUSTER, service=ext, taskSet=one["id"],
                       scale={"value": 1.0, "unit": "PERCENT"})
            == "InvalidParameterException"
        )
    finally:
        delete_service(ecs, rolling)
        delete_service(ecs, ext)


def test_delete_service_with_force_drains_then_goes_inactive(berth_up: BerthUp, unique):
    ecs = berth_up.ecs
    td = register(ecs, unique("del"))
    name = unique("del")
    ecs.create_service(cluster=CLUSTER, serviceName=name, taskDefinition=td, desiredCount=2)
    berth_up.cli("wait", "services-stable", "--cluster", CLUSTER, "--services", name, timeout=120)
    assert error_code(ecs.delete_service, cluster=CLUSTER, service=name) == "InvalidParameterException"
    deleted = ecs.delete_service(cluster=CLUSTER, service=name, force=True)["service"]
    assert deleted["status"] == "DRAINING" and deleted["desiredCount"] == 0

    def inactive():
        [service] = ecs.describe_services(cluster=CLUSTER, services=[name])["services"]
        return service if service["status"] == "INACTIVE" else None

    service = wait_until(inactive, 60, "the service to become INACTIVE")
    assert service["runningCount"] == 0 and service["pendingCount"] == 0
    assert all(t["lastStatus"] == "STOPPED" for t in tasks_of(ecs, name))
    assert name not in " ".join(ecs.list_services(cluster=CLUSTER)["serviceArns"])
