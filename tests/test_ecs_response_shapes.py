"""Where ECS responses carry `tags` and where they leave it out, and the error every call that
names a cluster gives for one that does not exist or was deleted, through boto3 and the AWS
CLI.

What ECS shows is taken from the outputs in the AWS CLI's ECS examples (real responses): the
cluster, task and capacity provider operations always answer with `tags` (`[]` when there are
none, or when DescribeClusters/DescribeTasks were not asked for TAGS); CreateService,
UpdateService and RegisterTaskDefinition show tags only when the resource has some;
DescribeServices and DescribeContainerInstances only with `include: ["TAGS"]`;
DescribeTaskDefinition always has a top-level `tags` (`[]` without TAGS); the operations that
change a container instance show its tags."""

import pytest

from helpers import WEB, expect_error, register_instance

TAGS = [{"key": "team", "value": "a"}]
TASK_ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def cluster(ecs, unique):
    name = unique("shapes")
    ecs.create_cluster(clusterName=name)
    return name


@pytest.fixture
def family(ecs, unique):
    name = unique("shapefam")
    ecs.register_task_definition(family=name, containerDefinitions=WEB)
    return name


@pytest.fixture
def deleted_cluster(ecs, unique):
    name = unique("deleted")
    ecs.create_cluster(clusterName=name)
    ecs.delete_cluster(cluster=name)
    return name


# ---- tags -----------------------------------------------------------------------------------


def test_cluster_responses_always_carry_tags_as_ecs_shows_them(ecs, unique):
    bare, tagged = unique("bare"), unique("tagged")
    assert ecs.create_cluster(clusterName=bare)["cluster"]["tags"] == []
    assert ecs.create_cluster(clusterName=tagged, tags=TAGS)["cluster"]["tags"] == TAGS
    # Without TAGS, ECS answers `tags: []` (the CLI's --include ATTACHMENTS example shows it).
    for include in ([], ["SETTINGS"]):
        shown = ecs.describe_clusters(clusters=[bare, tagged], include=include)["clusters"]
        assert [c["tags"] for c in shown] == [[], []]
    shown = ecs.describe_clusters(clusters=[bare, tagged], include=["TAGS"])["clusters"]
    assert [c["tags"] for c in shown] == [[], TAGS]
    settings = [{"name": "containerInsights", "value": "enabled"}]
    assert ecs.update_cluster_settings(cluster=tagged, settings=settings)["cluster"]["tags"] == TAGS
    assert ecs.delete_cluster(cluster=bare)["cluster"]["tags"] == []


def test_services_show_tags_only_when_they_have_some_or_when_asked(ecs, cluster, family):
    bare = ecs.create_service(cluster=cluster, serviceName="bare", taskDefinition=family, desiredCount=0)["service"]
    assert "tags" not in bare
    tagged = ecs.create_service(
        cluster=cluster, serviceName="tagged", taskDefinition=family, desiredCount=0, tags=TAGS
    )["service"]
    assert tagged["tags"] == TAGS
    assert "tags" not in ecs.update_service(cluster=cluster, service="bare", desiredCount=0)["service"]
    assert ecs.update_service(cluster=cluster, service="tagged", desiredCount=0)["service"]["tags"] == TAGS
    plain = ecs.describe_services(cluster=cluster, services=["bare", "tagged"])["services"]
    assert ["tags" in s for s in plain] == [False, False]
    asked = ecs.describe_services(cluster=cluster, services=["bare", "tagged"], include=["TAGS"])["services"]
    assert [s["tags"] for s in asked] == [[], TAGS]
    assert "tags" not in ecs.delete_service(cluster=cluster, service="bare")["service"]


def test_task_definitions_show_registered_tags_and_describe_always_answers_with_tags(ecs, unique):
    name = unique("tdtags")
    bare = ecs.register_task_definition(family=name, containerDefinitions=WEB)
    assert "tags" not in bare
    tagged = ecs.register_task_definition(family=name, containerDefinitions=WEB, tags=TAGS)
    assert tagged["tags"] == TAGS
    assert ecs.describe_task_definition(taskDefinition=f"{name}:2")["tags"] == []
    assert ecs.describe_task_definition(taskDefinition=f"{name}:2", include=["TAGS"])["tags"] == TAGS
    assert ecs.describe_task_definition(taskDefinition=f"{name}:1", include=["TAGS"])["tags"] == []
    assert "tags" not in ecs.deregister_task_definition(taskDefinition=f"{name}:1")["taskDefinition"]


def test_container_instances_show_tags_when_changed_and_when_described_with_tags(ecs, cluster):
    bare = register_instance(ecs, cluster)["containerInstanceArn"]
    tagged = register_instance(ecs, cluster, tags=TAGS)["containerInstanceArn"]
    plain = ecs.describe_container_instances(cluster=cluster, containerInstances=[bare, tagged])
    assert ["tags" in i for i in plain["containerInstances"]] == [False, False]
    asked = ecs.describe_container_instances(cluster=cluster, containerInstances=[bare, tagged], include=["TAGS"])
    assert sorted(len(i["tags"]) for i in asked["containerInstances"]) == [0, 1]
    drained = ecs.update_container_instances_state(cluster=cluster, containerInstances=[bare], status="DRAINING")
    assert drained["containerInstances"][0]["tags"] == []
    gone = ecs.deregister_container_instance(cluster=cluster, containerInstance=tagged)["containerInstance"]
    assert gone["tags"] == TAGS


def test_task_responses_carry_tags_and_describe_shows_them_only_with_tags(ecs, cluster, family):
    register_instance(ecs, cluster)
    bare = ecs.run_task(cluster=cluster, taskDefinition=family)["tasks"][0]
    tagged = ecs.run_task(cluster=cluster, taskDefinition=family, tags=TAGS)["tasks"][0]
    assert (bare["tags"], tagged["tags"]) == ([], TAGS)
    arns = [bare["taskArn"], tagged["taskArn"]]
    plain = ecs.describe_tasks(cluster=cluster, tasks=arns)["tasks"]
    assert sorted(map(len, (t["tags"] for t in plain))) == [0, 0]
    asked = ecs.describe_tasks(cluster=cluster, tasks=arns, include=["TAGS"])["tasks"]
    assert sorted(map(len, (t["tags"] for t in asked))) == [0, 1]
    for arn in arns:
        ecs.stop_task(cluster=cluster, task=arn)


def test_the_cli_prints_tags_as_ecs_does(berth, unique, family):
    name = unique("clishape")
    created = berth.cli("create-cluster", "--cluster-name", name).json["cluster"]
    assert created["tags"] == []
    service = berth.cli(
        "create-service", "--cluster", name, "--service-name", "web",
        "--task-definition", family, "--desired-count", "0",
    ).json["service"]
    assert "tags" not in service
    described = berth.cli("describe-task-definition", "--task-definition", family).json
    assert described["tags"] == []


# ---- unknown and deleted clusters ---------------------------------------------------------


def cluster_calls(ecs, cluster: str, family: str) -> dict:
    """Every call here names `cluster`; each should fail with ClusterNotFoundException."""
    return {
        "ListServices": lambda: ecs.list_services(cluster=cluster),
        "ListTasks": lambda: ecs.list_tasks(cluster=cluster),
        "ListContainerInstances": lambda: ecs.list_container_instances(cluster=cluster),
        "DescribeServices": lambda: ecs.describe_services(cluster=cluster, services=["web"]),
        "DescribeServices (none named)": lambda: ecs.describe_services(cluster=cluster, services=[]),
        "DescribeTasks": lambda: ecs.describe_tasks(cluster=cluster, tasks=[TASK_ID]),
        "DescribeTasks (none named)": lambda: ecs.describe_tasks(cluster=cluster, tasks=[]),
        "DescribeContainerInstances": lambda: ecs.describe_container_instances(
            cluster=cluster, containerInstances=[TASK_ID]
        ),
        "DescribeContainerInstances (none named)": lambda: ecs.describe_container_instances(
            cluster=cluster, containerInstances=[]
        ),
        "RunTask": lambda: ecs.run_task(cluster=cluster, taskDefinition=family),
        "StopTask": lambda: ecs.stop_task(cluster=cluster, task=TASK_ID),
        "CreateService": lambda: ecs.create_service(
            cluster=cluster, serviceName="web", taskDefinition=family, desiredCount=0
        ),
        "UpdateService": lambda: ecs.update_service(cluster=cluster, service="web", desiredCount=0),
        "DeleteService": lambda: ecs.delete_service(cluster=cluster, service="web"),
        "ListAttributes": lambda: ecs.list_attributes(cluster=cluster, targetType="container-instance"),
        "UpdateClusterSettings": lambda: ecs.update_cluster_settings(
            cluster=cluster, settings=[{"name": "containerInsights", "value": "enabled"}]
        ),
        "DeleteCluster": lambda: ecs.delete_cluster(cluster=cluster),
    }


@pytest.mark.parametrize("which", ["unknown", "deleted"])
def test_calls_naming_a_cluster_that_is_not_active_are_cluster_not_found(ecs, unique, family, deleted_cluster, which):
    cluster = unique("ghost") if which == "unknown" else deleted_cluster
    for operation, call in cluster_calls(ecs, cluster, family).items():
        error = expect_error("ClusterNotFoundException", call)
        assert error.response["Error"]["Message"] == "Cluster not found.", operation


def test_calls_without_a_cluster_look_for_the_default_one(ecs, family):
    assert ecs.describe_clusters()["failures"][0]["reason"] == "MISSING", "this module never creates `default`"
    for call in (
        lambda: ecs.list_services(),
        lambda: ecs.list_tasks(),
        lambda: ecs.describe_tasks(tasks=[]),
        lambda: ecs.describe_container_instances(containerInstances=[]),
        lambda: ecs.stop_task(task=TASK_ID),
        lambda: ecs.run_task(taskDefinition=family),
    ):
        expect_error("ClusterNotFoundException", call)


def test_describe_clusters_reports_an_unknown_cluster_as_a_missing_failure(ecs, unique):
    ghost = unique("ghost")
    out = ecs.describe_clusters(clusters=[ghost])
    assert out["clusters"] == []
    assert [f["reason"] for f in out["failures"]] == ["MISSING"]
    assert out["failures"][0]["arn"].endswith(f":cluster/{ghost}")


def test_an_empty_list_in_an_existing_cluster_is_still_refused(ecs, cluster):
    expect_error("InvalidParameterException", ecs.describe_tasks, cluster=cluster, tasks=[])
    expect_error("InvalidParameterException", ecs.describe_services, cluster=cluster, services=[])
    expect_error(
        "InvalidParameterException", ecs.describe_container_instances, cluster=cluster, containerInstances=[]
    )


def test_the_cli_reports_an_unknown_cluster_by_its_ecs_error(berth, unique):
    result = berth.cli("list-services", "--cluster", unique("ghost"), check=False)
    assert result.returncode != 0
    assert "ClusterNotFoundException" in result.stderr and "Cluster not found." in result.stderr, str(result)
