"""Container instances through boto3: RegisterContainerInstance (without an EC2 identity
document, as for ECS Anywhere), DescribeContainerInstances, ListContainerInstances,
UpdateContainerInstancesState and DeregisterContainerInstance."""

import datetime
import re

import pytest

from helpers import (
    ARN_PREFIX,
    RESOURCES,
    VERSION_INFO,
    all_pages,
    assert_subset,
    expect_error,
    instance_id,
    register_instance,
)

INVALID = ("ClientException", "InvalidParameterException")


@pytest.fixture
def cluster(ecs, unique):
    name = unique("ci")
    ecs.create_cluster(clusterName=name)
    return name


def instance_arn_pattern(cluster: str) -> str:
    return rf"^{re.escape(ARN_PREFIX)}:container-instance/{re.escape(cluster)}/[A-Za-z0-9_-]+$"


def test_register_returns_an_active_instance_with_its_resources(ecs, cluster):
    attributes = [{"name": "stack", "value": "blue"}]
    instance = register_instance(ecs, cluster, attributes=attributes)
    assert re.match(instance_arn_pattern(cluster), instance["containerInstanceArn"]), instance["containerInstanceArn"]
    assert instance["status"] == "ACTIVE"
    assert isinstance(instance.get("ec2InstanceId", ""), str)
    assert_subset(RESOURCES, sorted(instance["registeredResources"], key=lambda r: [x["name"] for x in RESOURCES].index(r["name"])))
    remaining = {r["name"]: r for r in instance["remainingResources"]}
    assert remaining["CPU"]["integerValue"] == 2048
    assert remaining["MEMORY"]["integerValue"] == 3768
    assert instance["runningTasksCount"] == 0
    assert instance["pendingTasksCount"] == 0
    assert_subset(VERSION_INFO, instance["versionInfo"])
    assert isinstance(instance["registeredAt"], datetime.datetime)
    assert {"name": "stack", "value": "blue"} in [
        {k: a[k] for k in ("name", "value") if k in a} for a in instance["attributes"]
    ]
    assert isinstance(instance["version"], int)


def test_register_into_an_unknown_cluster_is_cluster_not_found(ecs, unique):
    expect_error("ClusterNotFoundException", register_instance, ecs, unique("nocluster"))


def test_two_registrations_get_two_distinct_instances(ecs, cluster):
    first = register_instance(ecs, cluster)["containerInstanceArn"]
    second = register_instance(ecs, cluster)["containerInstanceArn"]
    assert first != second
    assert sorted(ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]) == sorted([first, second])


def test_registering_again_with_the_instance_arn_keeps_one_instance(ecs, cluster):
    arn = register_instance(ecs, cluster)["containerInstanceArn"]
    again = register_instance(ecs, cluster, containerInstanceArn=arn)
    assert again["containerInstanceArn"] == arn
    assert again["status"] == "ACTIVE"
    assert ecs.list_container_instances(cluster=cluster)["containerInstanceArns"] == [arn]
    counted = ecs.describe_clusters(clusters=[cluster])["clusters"][0]
    assert counted["registeredContainerInstancesCount"] == 1


def test_describe_accepts_arns_and_ids_and_reports_missing_ones(ecs, cluster):
    arn = register_instance(ecs, cluster)["containerInstanceArn"]
    missing_id = "0123456789abcdef0123456789abcdef"
    out = ecs.describe_container_instances(cluster=cluster, containerInstances=[arn, instance_id(arn), missing_id])
    assert [i["containerInstanceArn"] for i in out["containerInstances"]] == [arn, arn]
    assert [f["reason"] for f in out["failures"]] == ["MISSING"]
    assert out["failures"][0]["arn"].endswith(missing_id)


def test_operations_on_an_unknown_cluster_are_cluster_not_found(ecs, unique):
    ghost = unique("ghost")
    expect_error("ClusterNotFoundException", ecs.describe_container_instances, cluster=ghost, containerInstances=["x"])
    expect_error("ClusterNotFoundException", ecs.list_container_instances, cluster=ghost)
    expect_error(
        "ClusterNotFoundException",
        ecs.update_container_instances_state,
        cluster=ghost,
        containerInstances=["x"],
        status="DRAINING",
    )
    expect_error("ClusterNotFoundException", ecs.deregister_container_instance, cluster=ghost, containerInstance="x")


def test_draining_and_reactivating_an_instance(ecs, cluster):
    arn = register_instance(ecs, cluster)["containerInstanceArn"]
    other = register_instance(ecs, cluster)["containerInstanceArn"]
    before = ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])["containerInstances"][0]
    out = ecs.update_container_instances_state(cluster=cluster, containerInstances=[arn], status="DRAINING")
    assert [(i["containerInstanceArn"], i["status"]) for i in out["containerInstances"]] == [(arn, "DRAINING")]
    assert out["failures"] == []
    assert out["containerInstances"][0]["version"] > before["version"]
    assert ecs.list_container_instances(cluster=cluster, status="DRAINING")["containerInstanceArns"] == [arn]
    assert ecs.list_container_instances(cluster=cluster, status="ACTIVE")["containerInstanceArns"] == [other]
    assert sorted(ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]) == sorted([arn, other])
    drained = ecs.describe_clusters(clusters=[cluster])["clusters"][0]
    assert drained["registeredContainerInstancesCount"] == 2, "DRAINING instances are still registered"
    back = ecs.update_container_instances_state(cluster=cluster, containerInstances=[instance_id(arn)], status="ACTIVE")
    assert back["containerInstances"][0]["status"] == "ACTIVE"
    assert ecs.list_container_instances(cluster=cluster, status="DRAINING")["containerInstanceArns"] == []


def test_update_state_rejects_statuses_other_than_active_and_draining(ecs, cluster):
    arn = register_instance(ecs, cluster)["containerInstanceArn"]
    for status in ("PAUSED", "INACTIVE", "REGISTERING"):
        expect_error(
            "InvalidParameterException",
            ecs.update_container_instances_state,
            cluster=cluster,
            containerInstances=[arn],
            status=status,
        )
    assert ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])["containerInstances"][0]["status"] == "ACTIVE"


def test_update_state_reports_unknown_instances_as_failures(ecs, cluster):
    arn = register_instance(ecs, cluster)["containerInstanceArn"]
    missing = "fedcba9876543210fedcba9876543210"
    out = ecs.update_container_instances_state(cluster=cluster, containerInstances=[arn, missing], status="DRAINING")
    assert [i["containerInstanceArn"] for i in out["containerInstances"]] == [arn]
    assert [f["reason"] for f in out["failures"]] == ["MISSING"]


def test_list_container_instances_pages_through_every_instance_once(ecs, cluster):
    arns = {register_instance(ecs, cluster)["containerInstanceArn"] for _ in range(5)}
    first = ecs.list_container_instances(cluster=cluster, maxResults=2)
    assert len(first["containerInstanceArns"]) == 2 and first["nextToken"]
    listed = all_pages(ecs.list_container_instances, "containerInstanceArns", cluster=cluster, maxResults=2)
    assert sorted(listed) == sorted(arns)


def test_list_container_instances_rejects_bad_arguments(ecs, cluster):
    expect_error("InvalidParameterException", ecs.list_container_instances, cluster=cluster, maxResults=0)
    expect_error("InvalidParameterException", ecs.list_container_instances, cluster=cluster, status="SLEEPING")
    expect_error(INVALID, ecs.list_container_instances, cluster=cluster, nextToken="??")


def test_deregister_makes_an_instance_inactive_and_unlisted(ecs, cluster):
    arn = register_instance(ecs, cluster)["containerInstanceArn"]
    out = ecs.deregister_container_instance(cluster=cluster, containerInstance=arn)["containerInstance"]
    assert out["containerInstanceArn"] == arn
    assert out["status"] == "INACTIVE"
    assert ecs.list_container_instances(cluster=cluster)["containerInstanceArns"] == []
    described = ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])
    if described["containerInstances"]:
        assert described["containerInstances"][0]["status"] == "INACTIVE"
    else:
        assert [f["reason"] for f in described["failures"]] == ["MISSING"]
    assert ecs.describe_clusters(clusters=[cluster])["clusters"][0]["registeredContainerInstancesCount"] == 0


def test_deregister_an_unknown_instance_is_an_error(ecs, cluster):
    expect_error(INVALID, ecs.deregister_container_instance, cluster=cluster, containerInstance="0123456789abcdef0123456789abcdef")


def test_the_default_cluster_is_used_when_none_is_named(ecs):
    ecs.create_cluster()
    arn = register_instance(ecs, "default")["containerInstanceArn"]
    unnamed = ecs.list_container_instances()["containerInstanceArns"]
    assert arn in unnamed
    described = ecs.describe_container_instances(containerInstances=[instance_id(arn)])
    assert [i["containerInstanceArn"] for i in described["containerInstances"]] == [arn]


def test_discover_poll_endpoint_names_this_server_before_and_after_registration(berth, ecs, cluster):
    """The agent's first call: where to poll and send telemetry. Berth serves both itself, so
    the answer is the endpoint the caller reached, whether or not the instance exists yet."""
    expected = berth.endpoint.rstrip("/") + "/"
    before = ecs.discover_poll_endpoint(cluster=cluster, containerInstance="not-registered-yet")
    arn = register_instance(ecs, cluster)["containerInstanceArn"]
    after = ecs.discover_poll_endpoint(cluster=cluster, containerInstance=arn)
    for answer in (before, after):
        assert answer["endpoint"] == expected
        assert answer["telemetryEndpoint"] == expected
        assert answer["serviceConnectEndpoint"] == expected
    expect_error(INVALID, ecs.discover_poll_endpoint, cluster=" ")
