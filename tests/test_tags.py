"""Tags through boto3: TagResource, UntagResource and ListTagsForResource on clusters, task
definitions and container instances, with ECS's limits and error codes."""

import pytest

from helpers import WEB, cluster_arn, expect_error, register_instance, task_definition_arn


def tag_dict(tags: list) -> dict:
    return {t["key"]: t["value"] for t in tags}


@pytest.fixture
def cluster(ecs, unique):
    name = unique("tags")
    ecs.create_cluster(clusterName=name)
    return name


@pytest.fixture(params=["cluster", "task-definition", "container-instance"])
def resource_arn(request, ecs, cluster, unique):
    if request.param == "cluster":
        return cluster_arn(cluster)
    if request.param == "task-definition":
        family = unique("tagfam")
        ecs.register_task_definition(family=family, containerDefinitions=WEB)
        return task_definition_arn(family, 1)
    return register_instance(ecs, cluster)["containerInstanceArn"]


def test_tag_list_and_untag_a_resource(ecs, resource_arn):
    assert ecs.list_tags_for_resource(resourceArn=resource_arn)["tags"] == []
    ecs.tag_resource(resourceArn=resource_arn, tags=[{"key": "team", "value": "a"}, {"key": "env", "value": "dev"}])
    assert tag_dict(ecs.list_tags_for_resource(resourceArn=resource_arn)["tags"]) == {"team": "a", "env": "dev"}
    ecs.tag_resource(resourceArn=resource_arn, tags=[{"key": "env", "value": "prod"}, {"key": "cost", "value": ""}])
    assert tag_dict(ecs.list_tags_for_resource(resourceArn=resource_arn)["tags"]) == {"team": "a", "env": "prod", "cost": ""}
    ecs.untag_resource(resourceArn=resource_arn, tagKeys=["team", "not-there"])
    assert tag_dict(ecs.list_tags_for_resource(resourceArn=resource_arn)["tags"]) == {"env": "prod", "cost": ""}


def test_cluster_tags_show_in_describe_clusters(ecs, cluster):
    ecs.tag_resource(resourceArn=cluster_arn(cluster), tags=[{"key": "owner", "value": "me"}])
    described = ecs.describe_clusters(clusters=[cluster], include=["TAGS"])["clusters"][0]
    assert tag_dict(described["tags"]) == {"owner": "me"}
    ecs.untag_resource(resourceArn=cluster_arn(cluster), tagKeys=["owner"])
    assert not ecs.describe_clusters(clusters=[cluster], include=["TAGS"])["clusters"][0].get("tags")


def test_task_definition_tags_show_in_describe_with_include_tags(ecs, unique):
    family = unique("tdtags")
    ecs.register_task_definition(family=family, containerDefinitions=WEB, tags=[{"key": "a", "value": "1"}])
    ecs.tag_resource(resourceArn=task_definition_arn(family, 1), tags=[{"key": "b", "value": "2"}])
    described = ecs.describe_task_definition(taskDefinition=f"{family}:1", include=["TAGS"])
    assert tag_dict(described["tags"]) == {"a": "1", "b": "2"}


def test_tags_given_at_creation_are_listed(ecs, unique):
    name = unique("born-tagged")
    ecs.create_cluster(clusterName=name, tags=[{"key": "k", "value": "v"}])
    assert ecs.list_tags_for_resource(resourceArn=cluster_arn(name))["tags"] == [{"key": "k", "value": "v"}]


def test_tagging_an_unknown_resource_is_not_found(ecs, unique):
    missing_cluster = cluster_arn(unique("nocluster"))
    for call in (
        lambda: ecs.tag_resource(resourceArn=missing_cluster, tags=[{"key": "k", "value": "v"}]),
        lambda: ecs.untag_resource(resourceArn=missing_cluster, tagKeys=["k"]),
        lambda: ecs.list_tags_for_resource(resourceArn=missing_cluster),
    ):
        expect_error(("ClusterNotFoundException", "ResourceNotFoundException"), call)
    missing_td = task_definition_arn(unique("nofamily"), 1)
    expect_error(
        ("ResourceNotFoundException", "ClientException", "InvalidParameterException"),
        ecs.tag_resource,
        resourceArn=missing_td,
        tags=[{"key": "k", "value": "v"}],
    )


@pytest.mark.parametrize("arn", ["not-an-arn", "arn:aws:s3:::bucket", "arn:aws:ecs:us-east-1:000000000000:spaceship/x"])
def test_tagging_something_that_is_not_an_ecs_resource_arn_is_invalid(ecs, arn):
    expect_error("InvalidParameterException", ecs.tag_resource, resourceArn=arn, tags=[{"key": "k", "value": "v"}])


@pytest.mark.parametrize(
    "tags",
    [
        [{"key": "aws:owner", "value": "x"}],
        [{"key": "AWS:owner", "value": "x"}],
        [{"key": "k" * 129, "value": "x"}],
        [{"key": "k", "value": "v" * 257}],
        [{"key": "dup", "value": "1"}, {"key": "dup", "value": "2"}],
    ],
)
def test_invalid_tags_are_refused_and_nothing_is_written(ecs, cluster, tags):
    expect_error("InvalidParameterException", ecs.tag_resource, resourceArn=cluster_arn(cluster), tags=tags)
    assert ecs.list_tags_for_resource(resourceArn=cluster_arn(cluster))["tags"] == []


def test_a_resource_holds_at_most_50_tags(ecs, cluster):
    arn = cluster_arn(cluster)
    ecs.tag_resource(resourceArn=arn, tags=[{"key": f"k{i}", "value": "v"} for i in range(50)])
    assert len(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == 50
    expect_error(
        ("InvalidParameterException", "LimitExceededException"),
        ecs.tag_resource,
        resourceArn=arn,
        tags=[{"key": "one-too-many", "value": "v"}],
    )
    assert len(ecs.list_tags_for_resource(resourceArn=arn)["tags"]) == 50
    ecs.tag_resource(resourceArn=arn, tags=[{"key": "k0", "value": "overwritten"}])
    assert tag_dict(ecs.list_tags_for_resource(resourceArn=arn)["tags"])["k0"] == "overwritten"
