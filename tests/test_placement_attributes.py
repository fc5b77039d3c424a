"""Placement honours a task definition's requiresAttributes, through boto3: instances registered
with register_container_instance and the attributes an agent would advertise (no Docker).
A task no instance can take is an ATTRIBUTE failure per instance (ECS's reason for RunTask and
StartTask) naming the missing attribute in `detail`; PutAttributes makes an instance eligible."""

import time

from helpers import AGENT_ATTRIBUTES, register_instance

SPLUNK = "com.amazonaws.ecs.capability.logging-driver.splunk"
# A stock agent without the splunk log driver (its daemon has no splunk plugin).
NO_SPLUNK = [a for a in AGENT_ATTRIBUTES if a["name"] != SPLUNK]


def splunk_family(ecs, unique) -> str:
    family = unique("splunky")
    td = ecs.register_task_definition(
        family=family,
        containerDefinitions=[
            {
                "name": "app",
                "image": "busybox",
                "memory": 64,
                "essential": True,
                "logConfiguration": {"logDriver": "splunk", "options": {"splunk-url": "https://splunk.example:8088"}},
            }
        ],
    )["taskDefinition"]
    assert SPLUNK in {a["name"] for a in td["requiresAttributes"]}
    return family


def cluster_of(ecs, unique, instances: int) -> tuple[str, list[str]]:
    cluster = unique("attrplace")
    ecs.create_cluster(clusterName=cluster)
    arns = [register_instance(ecs, cluster, attributes=NO_SPLUNK)["containerInstanceArn"] for _ in range(instances)]
    return cluster, arns


def test_run_task_needing_an_attribute_no_instance_has_fails_with_attribute(ecs, unique):
    cluster, arns = cluster_of(ecs, unique, 2)
    family = splunk_family(ecs, unique)
    out = ecs.run_task(cluster=cluster, taskDefinition=family, count=2)
    assert out["tasks"] == []
    failures = sorted(out["failures"], key=lambda f: f["arn"])
    assert failures == [{"arn": arn, "reason": "ATTRIBUTE", "detail": SPLUNK} for arn in sorted(arns)]
    assert ecs.list_tasks(cluster=cluster)["taskArns"] == []


def test_put_attributes_makes_an_instance_take_the_tasks(ecs, unique):
    cluster, (first, second) = cluster_of(ecs, unique, 2)
    family = splunk_family(ecs, unique)
    ecs.put_attributes(
        cluster=cluster, attributes=[{"name": SPLUNK, "targetType": "container-instance", "targetId": second}]
    )
    out = ecs.run_task(cluster=cluster, taskDefinition=family, count=3)
    assert out["failures"] == []
    assert [t["containerInstanceArn"] for t in out["tasks"]] == [second] * 3
    # Taking the attribute away again makes the instance ineligible for new tasks.
    ecs.delete_attributes(
        cluster=cluster, attributes=[{"name": SPLUNK, "targetType": "container-instance", "targetId": second}]
    )
    out = ecs.run_task(cluster=cluster, taskDefinition=family)
    assert out["tasks"] == []
    assert {(f["arn"], f["reason"], f["detail"]) for f in out["failures"]} == {
        (first, "ATTRIBUTE", SPLUNK),
        (second, "ATTRIBUTE", SPLUNK),
    }


def test_start_task_on_an_instance_lacking_the_attribute_is_refused(ecs, unique):
    cluster, (lacking,) = cluster_of(ecs, unique, 1)
    carrying = register_instance(ecs, cluster, attributes=AGENT_ATTRIBUTES)["containerInstanceArn"]
    family = splunk_family(ecs, unique)
    out = ecs.start_task(cluster=cluster, taskDefinition=family, containerInstances=[lacking, carrying])
    assert [t["containerInstanceArn"] for t in out["tasks"]] == [carrying]
    assert out["failures"] == [{"arn": lacking, "reason": "ATTRIBUTE", "detail": SPLUNK}]


def test_an_instance_registered_bare_cannot_take_a_task_needing_a_docker_api_version(ecs, unique):
    cluster = unique("attrbare")
    ecs.create_cluster(clusterName=cluster)
    bare = register_instance(ecs, cluster)["containerInstanceArn"]
    family = unique("labelled")
    ecs.register_task_definition(
        family=family,
        containerDefinitions=[
            {"name": "app", "image": "busybox", "memory": 64, "dockerLabels": {"team": "a"}}
        ],
    )
    out = ecs.run_task(cluster=cluster, taskDefinition=family)
    assert out["failures"] == [
        {"arn": bare, "reason": "ATTRIBUTE", "detail": "com.amazonaws.ecs.capability.docker-remote-api.1.18"}
    ]
    agent_like = register_instance(ecs, cluster, attributes=AGENT_ATTRIBUTES)["containerInstanceArn"]
    out = ecs.run_task(cluster=cluster, taskDefinition=family)
    assert [t["containerInstanceArn"] for t in out["tasks"]] == [agent_like]


def test_a_service_that_cannot_place_for_an_attribute_says_so_in_its_events(ecs, unique):
    cluster, (arn,) = cluster_of(ecs, unique, 1)
    family = splunk_family(ecs, unique)
    service = unique("svc")
    ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=family, desiredCount=1)
    instance = arn.rsplit("/", 1)[-1]
    deadline = time.monotonic() + 30
    messages: list[str] = []
    while time.monotonic() < deadline:
        described = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
        messages = [e["message"] for e in described.get("events", [])]
        if any("missing an attribute" in m for m in messages):
            break
        time.sleep(0.5)
    assert any(
        m.startswith(f"(service {service}) was unable to place a task")
        and f"container-instance {instance}" in m
        and "is missing an attribute required by your task" in m
        for m in messages
    ), messages
    assert ecs.list_tasks(cluster=cluster)["taskArns"] == []
