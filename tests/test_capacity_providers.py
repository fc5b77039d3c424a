"""Capacity providers through boto3 and the AWS CLI: CreateCapacityProvider,
DescribeCapacityProviders, UpdateCapacityProvider, DeleteCapacityProvider,
PutClusterCapacityProviders and CreateCluster with providers, and capacity provider
strategies honoured when RunTask and a service place tasks. A provider's instances are the
container instances registered (without Docker) with the `berth.autoscaling-group` attribute
naming its Auto Scaling group; FARGATE and FARGATE_SPOT are built in."""

import time
from collections import Counter

from helpers import AGENT_ATTRIBUTES, WEB, expect_error, register_instance

GROUP_ATTRIBUTE = "berth.autoscaling-group"
BOTH_GIVEN = "Specifying both a launch type and capacity provider strategy is not supported. Remove one and try again."


def group_arn(group: str) -> str:
    return f"arn:aws:autoscaling:us-east-1:000000000000:autoScalingGroup:0b5e2f7a:autoScalingGroupName/{group}"


def create_provider(ecs, name: str, group: str, **extra) -> dict:
    return ecs.create_capacity_provider(
        name=name, autoScalingGroupProvider={"autoScalingGroupArn": group_arn(group)}, **extra
    )["capacityProvider"]


def instance_in(ecs, cluster: str, group: str) -> str:
    attributes = [*AGENT_ATTRIBUTES, {"name": GROUP_ATTRIBUTE, "value": group}]
    return register_instance(ecs, cluster, attributes=attributes)["containerInstanceArn"]


def two_provider_cluster(ecs, unique, **cluster_args) -> tuple[str, dict[str, str], dict[str, str]]:
    """A cluster with providers `blue` and `green` (unique names), one instance in each
    provider's group; returns the cluster, provider names and their instances."""
    names = {"blue": unique("blue"), "green": unique("green")}
    for colour, name in names.items():
        create_provider(ecs, name, f"{name}-asg")
    cluster = unique("cp")
    ecs.create_cluster(clusterName=cluster, capacityProviders=list(names.values()), **cluster_args)
    instances = {colour: instance_in(ecs, cluster, f"{name}-asg") for colour, name in names.items()}
    return cluster, names, instances


def family_of(ecs, unique) -> str:
    family = unique("cpweb")
    ecs.register_task_definition(family=family, containerDefinitions=[{**WEB[0], "memory": 16}])
    return family


def per_provider(tasks: list[dict]) -> Counter:
    return Counter(t.get("capacityProviderName") for t in tasks)


def test_create_describe_update_and_delete_a_provider(ecs, unique):
    name = unique("crud")
    created = create_provider(ecs, name, f"{name}-asg", tags=[{"key": "team", "value": "a"}])
    assert created["name"] == name
    assert created["capacityProviderArn"] == f"arn:aws:ecs:us-east-1:000000000000:capacity-provider/{name}"
    assert created["status"] == "ACTIVE"
    assert created["type"] == "EC2_AUTOSCALING"
    asg = created["autoScalingGroupProvider"]
    assert asg["autoScalingGroupArn"] == group_arn(f"{name}-asg")
    assert asg["managedScaling"] == {
        "status": "DISABLED",
        "targetCapacity": 100,
        "minimumScalingStepSize": 1,
        "maximumScalingStepSize": 10000,
        "instanceWarmupPeriod": 300,
    }
    assert asg["managedTerminationProtection"] == "DISABLED"
    assert asg["managedDraining"] == "ENABLED"

    described = ecs.describe_capacity_providers(capacityProviders=[name], include=["TAGS"])
    assert described["capacityProviders"][0]["tags"] == [{"key": "team", "value": "a"}]
    assert ecs.describe_capacity_providers(capacityProviders=[name])["capacityProviders"][0].get("tags", []) == []
    arn = created["capacityProviderArn"]
    assert ecs.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "team", "value": "a"}]

    updated = ecs.update_capacity_provider(
        name=name,
        autoScalingGroupProvider={"managedScaling": {"status": "ENABLED", "targetCapacity": 80}, "managedDraining": "DISABLED"},
    )["capacityProvider"]
    scaling = updated["autoScalingGroupProvider"]["managedScaling"]
    assert (scaling["status"], scaling["targetCapacity"], scaling["instanceWarmupPeriod"]) == ("ENABLED", 80, 300)
    assert updated["autoScalingGroupProvider"]["managedDraining"] == "DISABLED"
    expect_error(
        "InvalidParameterException",
        ecs.update_capacity_provider,
        name=name,
        autoScalingGroupProvider={"managedScaling": {"minimumScalingStepSize": 10000, "maximumScalingStepSize": 1}},
    )

    deleted = ecs.delete_capacity_provider(capacityProvider=arn)["capacityProvider"]
    assert (deleted["status"], deleted["updateStatus"]) == ("ACTIVE", "DELETE_IN_PROGRESS")
    gone = ecs.describe_capacity_providers(capacityProviders=[name])["capacityProviders"][0]
    assert (gone["status"], gone["updateStatus"]) == ("INACTIVE", "DELETE_COMPLETE")
    assert name not in {p["name"] for p in ecs.describe_capacity_providers(maxResults=10)["capacityProviders"]}
    expect_error("ClientException", ecs.delete_capacity_provider, capacityProvider=name)
    expect_error("ClientException", ecs.update_capacity_provider, name=name, autoScalingGroupProvider={})
    # The name of a deleted provider can be used again.
    assert create_provider(ecs, name, f"{name}-asg")["status"] == "ACTIVE"


def test_create_refuses_reserved_names_taken_names_and_groups(ecs, unique):
    name = unique("taken")
    create_provider(ecs, name, f"{name}-asg")
    for bad in ["aws-provider", "ecs_provider", "fargate-mine", "FARGATE", "has space", "x" * 256]:
        expect_error("ClientException", create_provider, ecs, bad, unique("g"))
    error = expect_error("ClientException", create_provider, ecs, name, unique("other"))
    assert "already exists" in error.response["Error"]["Message"]
    error = expect_error("ClientException", create_provider, ecs, unique("second"), f"{name}-asg")
    assert "Auto Scaling group" in error.response["Error"]["Message"]
    expect_error(
        "InvalidParameterException",
        ecs.create_capacity_provider,
        name=unique("steps"),
        autoScalingGroupProvider={
            "autoScalingGroupArn": group_arn(unique("g")),
            "managedScaling": {"minimumScalingStepSize": 5, "maximumScalingStepSize": 2},
        },
    )


def test_describe_lists_fargate_and_fargate_spot_which_cannot_be_changed(ecs, unique):
    pages, token = [], None
    while True:
        page = ecs.describe_capacity_providers(maxResults=2, **({"nextToken": token} if token else {}))
        pages.append(page["capacityProviders"])
        token = page.get("nextToken")
        if not token:
            break
    listed = [p for page in pages for p in page]
    assert all(len(page) <= 2 for page in pages)
    assert [p["name"] for p in listed][-2:] == ["FARGATE", "FARGATE_SPOT"]
    fargate = {p["name"]: p for p in listed if p["name"].startswith("FARGATE")}
    assert fargate["FARGATE_SPOT"]["type"] == "FARGATE_SPOT"
    assert fargate["FARGATE"]["status"] == "ACTIVE"
    assert "autoScalingGroupProvider" not in fargate["FARGATE"]
    missing = ecs.describe_capacity_providers(capacityProviders=["FARGATE", unique("nope")])
    assert [p["name"] for p in missing["capacityProviders"]] == ["FARGATE"]
    assert missing["failures"][0]["reason"] == "MISSING"
    expect_error("ClientException", ecs.delete_capacity_provider, capacityProvider="FARGATE_SPOT")
    expect_error("ClientException", ecs.update_capacity_provider, name="FARGATE", autoScalingGroupProvider={})
    # Any number of clusters may use the Fargate providers.
    for _ in range(2):
        cluster = ecs.create_cluster(clusterName=unique("fg"), capacityProviders=["FARGATE", "FARGATE_SPOT"])["cluster"]
        assert cluster["capacityProviders"] == ["FARGATE", "FARGATE_SPOT"]


def test_the_aws_cli_creates_and_describes_a_provider(berth, unique):
    name = unique("cli")
    created = berth.cli(
        "create-capacity-provider",
        "--name",
        name,
        "--auto-scaling-group-provider",
        f"autoScalingGroupArn={group_arn(name + '-asg')},managedScaling={{status=ENABLED,targetCapacity=90}},managedTerminationProtection=DISABLED",
    ).json["capacityProvider"]
    assert created["autoScalingGroupProvider"]["managedScaling"]["targetCapacity"] == 90
    described = berth.cli("describe-capacity-providers", "--capacity-providers", name).json
    assert [p["name"] for p in described["capacityProviders"]] == [name]


def test_cluster_association_and_default_strategy(berth, ecs, unique):
    cluster, names, _ = two_provider_cluster(ecs, unique)
    blue, green = names["blue"], names["green"]
    described = ecs.describe_clusters(clusters=[cluster])["clusters"][0]
    assert described["capacityProviders"] == [blue, green]
    assert described["defaultCapacityProviderStrategy"] == []

    strategy = [{"capacityProvider": blue, "base": 1, "weight": 1}, {"capacityProvider": green, "weight": 2}]
    put = ecs.put_cluster_capacity_providers(
        cluster=cluster, capacityProviders=[blue, green], defaultCapacityProviderStrategy=strategy
    )["cluster"]
    assert put["defaultCapacityProviderStrategy"] == [
        {"capacityProvider": blue, "base": 1, "weight": 1},
        {"capacityProvider": green, "base": 0, "weight": 2},
    ]
    # A strategy may name only the cluster's providers, and give a base to one provider only.
    for bad in (
        [{"capacityProvider": "FARGATE", "weight": 1}],
        [{"capacityProvider": blue, "base": 1, "weight": 1}, {"capacityProvider": green, "base": 1, "weight": 1}],
    ):
        expect_error(
            "InvalidParameterException",
            ecs.put_cluster_capacity_providers,
            cluster=cluster,
            capacityProviders=[blue, green],
            defaultCapacityProviderStrategy=bad,
        )
    # Out of ECS's ranges (boto3 would refuse these before sending them).
    for item in ({"capacityProvider": blue, "weight": 1001}, {"capacityProvider": blue, "base": 100001}):
        answer = berth.call(
            "PutClusterCapacityProviders",
            {"cluster": cluster, "capacityProviders": [blue, green], "defaultCapacityProviderStrategy": [item]},
        )
        assert answer.status == 400 and answer.json()["__type"].endswith("InvalidParameterException"), answer.body
    # A provider that uses an Auto Scaling group belongs to one cluster at most.
    expect_error("InvalidParameterException", ecs.create_cluster, clusterName=unique("other"), capacityProviders=[blue])
    expect_error(
        "InvalidParameterException", ecs.create_cluster, clusterName=unique("other"), capacityProviders=[unique("nosuch")]
    )
    # Still associated: DeleteCapacityProvider does not delete it and says why.
    failed = ecs.delete_capacity_provider(capacityProvider=blue)["capacityProvider"]
    assert (failed["status"], failed["updateStatus"]) == ("ACTIVE", "DELETE_FAILED")
    assert cluster in failed["updateStatusReason"]

    # The default strategy applies when RunTask names neither a launch type nor a strategy.
    family = family_of(ecs, unique)
    ran = ecs.run_task(cluster=cluster, taskDefinition=family, count=4)
    assert ran["failures"] == []
    assert per_provider(ran["tasks"]) == {blue: 2, green: 2}
    assert {t["launchType"] for t in ran["tasks"]} == {"EC2"}
    by_launch_type = ecs.run_task(cluster=cluster, taskDefinition=family, launchType="EC2")["tasks"]
    assert "capacityProviderName" not in by_launch_type[0]
    # Instances show the provider of their group.
    instances = ecs.describe_container_instances(
        cluster=cluster, containerInstances=ecs.list_container_instances(cluster=cluster)["containerInstanceArns"]
    )["containerInstances"]
    assert sorted(i["capacityProviderName"] for i in instances) == sorted([blue, green])

    # A provider with running tasks cannot leave the cluster.
    error = expect_error(
        "ResourceInUseException",
        ecs.put_cluster_capacity_providers,
        cluster=cluster,
        capacityProviders=[green],
        defaultCapacityProviderStrategy=[],
    )
    assert "in use" in error.response["Error"]["Message"]


def test_run_task_places_by_base_and_weight_on_each_providers_instances(ecs, unique):
    cluster, names, instances = two_provider_cluster(ecs, unique)
    family = family_of(ecs, unique)
    strategy = [
        {"capacityProvider": names["blue"], "base": 2, "weight": 1},
        {"capacityProvider": names["green"], "weight": 3},
    ]
    ran = ecs.run_task(cluster=cluster, taskDefinition=family, count=10, capacityProviderStrategy=strategy)
    assert ran["failures"] == []
    assert per_provider(ran["tasks"]) == {names["blue"]: 4, names["green"]: 6}
    for task in ran["tasks"]:
        colour = "blue" if task["capacityProviderName"] == names["blue"] else "green"
        assert task["containerInstanceArn"] == instances[colour]
        assert task["launchType"] == "EC2"
    described = ecs.describe_tasks(cluster=cluster, tasks=[t["taskArn"] for t in ran["tasks"]])["tasks"]
    assert per_provider(described) == {names["blue"]: 4, names["green"]: 6}

    # Weight 0 takes nothing while another provider has weight.
    only_green = [{"capacityProvider": names["blue"], "weight": 0}, {"capacityProvider": names["green"], "weight": 1}]
    ran = ecs.run_task(cluster=cluster, taskDefinition=family, count=3, capacityProviderStrategy=only_green)
    assert per_provider(ran["tasks"]) == {names["green"]: 3}
    all_zero = [{"capacityProvider": names["blue"], "weight": 0}, {"capacityProvider": names["green"], "weight": 0}]
    expect_error(
        "InvalidParameterException",
        ecs.run_task,
        cluster=cluster,
        taskDefinition=family,
        capacityProviderStrategy=all_zero,
    )


def test_a_provider_without_instances_fails_with_the_attribute_it_needs(ecs, unique):
    lonely = unique("lonely")
    create_provider(ecs, lonely, f"{lonely}-asg")
    cluster = unique("cpempty")
    ecs.create_cluster(clusterName=cluster, capacityProviders=[lonely])
    other = instance_in(ecs, cluster, unique("elsewhere"))
    family = family_of(ecs, unique)
    ran = ecs.run_task(
        cluster=cluster, taskDefinition=family, capacityProviderStrategy=[{"capacityProvider": lonely, "weight": 1}]
    )
    assert ran["tasks"] == []
    assert ran["failures"] == [{"arn": other, "reason": "ATTRIBUTE", "detail": f"{GROUP_ATTRIBUTE}={lonely}-asg"}]


def test_launch_type_and_strategy_are_mutually_exclusive(ecs, unique):
    cluster, names, _ = two_provider_cluster(ecs, unique)
    family = family_of(ecs, unique)
    strategy = [{"capacityProvider": names["blue"], "weight": 1}]
    for call, args in (
        (ecs.run_task, {"taskDefinition": family}),
        (ecs.create_service, {"serviceName": unique("svc"), "taskDefinition": family, "desiredCount": 1}),
    ):
        error = expect_error(
            "InvalidParameterException", call, cluster=cluster, launchType="EC2", capacityProviderStrategy=strategy, **args
        )
        assert error.response["Error"]["Message"] == BOTH_GIVEN
    error = expect_error(
        "InvalidParameterException",
        ecs.run_task,
        cluster=cluster,
        taskDefinition=family,
        capacityProviderStrategy=[{"capacityProvider": "FARGATE", "weight": 1}],
    )
    assert "not associated with the cluster" in error.response["Error"]["Message"]


def service_tasks(ecs, cluster: str, service: str, count: int) -> list[dict]:
    deadline = time.monotonic() + 30
    arns: list[str] = []
    while time.monotonic() < deadline:
        arns = ecs.list_tasks(cluster=cluster, serviceName=service)["taskArns"]
        if len(arns) >= count:
            break
        time.sleep(0.3)
    assert len(arns) == count, arns
    return ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]


def test_a_service_keeps_its_strategy_split_across_a_scale_up(ecs, unique):
    cluster, names, _ = two_provider_cluster(ecs, unique)
    blue, green = names["blue"], names["green"]
    family = family_of(ecs, unique)
    service = unique("svc")
    strategy = [{"capacityProvider": blue, "weight": 1}, {"capacityProvider": green, "weight": 3}]
    created = ecs.create_service(
        cluster=cluster, serviceName=service, taskDefinition=family, desiredCount=4, capacityProviderStrategy=strategy
    )["service"]
    assert "launchType" not in created
    assert created["capacityProviderStrategy"] == [
        {"capacityProvider": blue, "weight": 1, "base": 0},
        {"capacityProvider": green, "weight": 3, "base": 0},
    ]
    assert created["deployments"][0]["capacityProviderStrategy"] == created["capacityProviderStrategy"]
    assert "launchType" not in created["deployments"][0]
    assert per_provider(service_tasks(ecs, cluster, service, 4)) == {blue: 1, green: 3}

    ecs.update_service(cluster=cluster, service=service, desiredCount=8)
    assert per_provider(service_tasks(ecs, cluster, service, 8)) == {blue: 2, green: 6}

    # The service's strategy keeps its providers in the cluster.
    expect_error(
        "ResourceInUseException",
        ecs.put_cluster_capacity_providers,
        cluster=cluster,
        capacityProviders=[green],
        defaultCapacityProviderStrategy=[],
    )
    # A new strategy is a new deployment.
    updated = ecs.update_service(
        cluster=cluster, service=service, capacityProviderStrategy=[{"capacityProvider": green, "weight": 1}]
    )["service"]
    assert updated["capacityProviderStrategy"] == [{"capacityProvider": green, "weight": 1, "base": 0}]
    assert len(updated["deployments"]) == 2
    assert updated["deployments"][0]["capacityProviderStrategy"] == [{"capacityProvider": green, "weight": 1, "base": 0}]
    ecs.delete_service(cluster=cluster, service=service, force=True)


def test_a_service_takes_the_clusters_default_strategy(ecs, unique):
    cluster, names, _ = two_provider_cluster(ecs, unique)
    default = [{"capacityProvider": names["green"], "base": 0, "weight": 1}]
    ecs.put_cluster_capacity_providers(
        cluster=cluster, capacityProviders=list(names.values()), defaultCapacityProviderStrategy=default
    )
    family = family_of(ecs, unique)
    service = unique("svcdef")
    created = ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=family, desiredCount=2)["service"]
    assert created["capacityProviderStrategy"] == [{"capacityProvider": names["green"], "weight": 1, "base": 0}]
    assert per_provider(service_tasks(ecs, cluster, service, 2)) == {names["green"]: 2}
    ecs.delete_service(cluster=cluster, service=service, force=True)
