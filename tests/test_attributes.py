"""Attributes through boto3: PutAttributes, DeleteAttributes and ListAttributes on container
instances, with ECS's limits and error codes."""

import pytest

from helpers import all_pages, expect_error, instance_id, register_instance

TARGET = "container-instance"


@pytest.fixture
def instance(ecs, unique):
    cluster = unique("attrs")
    ecs.create_cluster(clusterName=cluster)
    return cluster, register_instance(ecs, cluster)["containerInstanceArn"]


def custom(attributes: list, name_prefix: str = "") -> dict:
    """name -> value of the attributes whose name starts with name_prefix."""
    return {a["name"]: a.get("value") for a in attributes if a["name"].startswith(name_prefix)}


def described_attributes(ecs, cluster, arn) -> list:
    return ecs.describe_container_instances(cluster=cluster, containerInstances=[arn])["containerInstances"][0]["attributes"]


def test_put_attributes_shows_in_list_attributes_and_describe(ecs, instance):
    cluster, arn = instance
    put = ecs.put_attributes(
        cluster=cluster,
        attributes=[
            {"name": "t.stack", "value": "blue", "targetType": TARGET, "targetId": arn},
            {"name": "t.gpu", "targetType": TARGET, "targetId": arn},
        ],
    )
    assert custom(put["attributes"], "t.") == {"t.stack": "blue", "t.gpu": None}
    listed = all_pages(ecs.list_attributes, "attributes", cluster=cluster, targetType=TARGET)
    ours = [a for a in listed if a["name"].startswith("t.")]
    assert {(a["name"], a.get("value"), a["targetType"], a["targetId"]) for a in ours} == {
        ("t.stack", "blue", TARGET, arn),
        ("t.gpu", None, TARGET, arn),
    }
    assert custom(described_attributes(ecs, cluster, arn), "t.") == {"t.stack": "blue", "t.gpu": None}


def test_list_attributes_filters_by_name_and_value(ecs, instance, unique):
    cluster, arn = instance
    other = register_instance(ecs, cluster)["containerInstanceArn"]
    ecs.put_attributes(
        cluster=cluster,
        attributes=[
            {"name": "zone", "value": "a", "targetType": TARGET, "targetId": arn},
            {"name": "zone", "value": "b", "targetType": TARGET, "targetId": other},
            {"name": "disk", "value": "ssd", "targetType": TARGET, "targetId": other},
        ],
    )
    by_name = ecs.list_attributes(cluster=cluster, targetType=TARGET, attributeName="zone")["attributes"]
    assert sorted((a["targetId"], a["value"]) for a in by_name) == sorted([(arn, "a"), (other, "b")])
    by_value = ecs.list_attributes(cluster=cluster, targetType=TARGET, attributeName="zone", attributeValue="b")["attributes"]
    assert [(a["targetId"], a["name"], a["value"]) for a in by_value] == [(other, "zone", "b")]


def test_putting_an_attribute_again_replaces_its_value(ecs, instance):
    cluster, arn = instance
    for value in ("one", "two"):
        ecs.put_attributes(cluster=cluster, attributes=[{"name": "color", "value": value, "targetId": arn}])
    listed = ecs.list_attributes(cluster=cluster, targetType=TARGET, attributeName="color")["attributes"]
    assert [(a["targetId"], a["value"]) for a in listed] == [(arn, "two")]


def test_put_attributes_accepts_a_short_instance_id(ecs, instance):
    cluster, arn = instance
    ecs.put_attributes(cluster=cluster, attributes=[{"name": "short", "value": "id", "targetType": TARGET, "targetId": instance_id(arn)}])
    assert custom(described_attributes(ecs, cluster, arn), "short") == {"short": "id"}


def test_delete_attributes_removes_them(ecs, instance):
    cluster, arn = instance
    ecs.put_attributes(cluster=cluster, attributes=[{"name": "temp", "value": "x", "targetId": arn}])
    deleted = ecs.delete_attributes(cluster=cluster, attributes=[{"name": "temp", "targetId": arn}])
    assert [a["name"] for a in deleted["attributes"]] == ["temp"]
    assert ecs.list_attributes(cluster=cluster, targetType=TARGET, attributeName="temp")["attributes"] == []
    assert "temp" not in custom(described_attributes(ecs, cluster, arn))


def test_attributes_on_unknown_targets_or_clusters_are_refused(ecs, instance, unique):
    cluster, arn = instance
    missing = arn.rsplit("/", 1)[0] + "/0123456789abcdef0123456789abcdef"
    expect_error("TargetNotFoundException", ecs.put_attributes, cluster=cluster, attributes=[{"name": "a", "targetId": missing}])
    expect_error("TargetNotFoundException", ecs.delete_attributes, cluster=cluster, attributes=[{"name": "a", "targetId": missing}])
    ghost = unique("ghost")
    expect_error("ClusterNotFoundException", ecs.put_attributes, cluster=ghost, attributes=[{"name": "a", "targetId": arn}])
    expect_error("ClusterNotFoundException", ecs.list_attributes, cluster=ghost, targetType=TARGET)


@pytest.mark.parametrize(
    "attribute",
    [
        {"name": "bad name"},
        {"name": "n" * 129},
        {"name": "ok", "value": "v" * 129},
        {"name": "ok", "value": " leading-space"},
        {"name": "ok", "value": "bad|char"},
        {"name": "ok", "targetType": "task"},
    ],
)
def test_put_attributes_rejects_names_values_and_types_outside_ecs_rules(ecs, instance, attribute):
    cluster, arn = instance
    expect_error("InvalidParameterException", ecs.put_attributes, cluster=cluster, attributes=[{**attribute, "targetId": arn}])
    assert custom(described_attributes(ecs, cluster, arn), attribute["name"][:2]) == {}


def test_put_attributes_is_all_or_nothing(ecs, instance):
    cluster, arn = instance
    expect_error(
        "InvalidParameterException",
        ecs.put_attributes,
        cluster=cluster,
        attributes=[{"name": "good-one", "value": "x", "targetId": arn}, {"name": "bad one", "targetId": arn}],
    )
    assert "good-one" not in custom(described_attributes(ecs, cluster, arn))


def test_more_than_ten_custom_attributes_on_one_instance_exceed_the_limit(ecs, instance):
    cluster, arn = instance
    many = [{"name": f"limit{i}", "value": "x", "targetId": arn} for i in range(11)]
    expect_error("AttributeLimitExceededException", ecs.put_attributes, cluster=cluster, attributes=many)
    assert custom(described_attributes(ecs, cluster, arn), "limit") == {}


def test_list_attributes_needs_a_known_target_type_and_pages(ecs, instance):
    cluster, arn = instance
    expect_error("InvalidParameterException", ecs.list_attributes, cluster=cluster, targetType="task")
    ecs.put_attributes(cluster=cluster, attributes=[{"name": f"pg{i}", "value": "v", "targetId": arn} for i in range(5)])
    first = ecs.list_attributes(cluster=cluster, targetType=TARGET, maxResults=2)
    assert len(first["attributes"]) == 2 and first["nextToken"]
    listed = all_pages(ecs.list_attributes, "attributes", cluster=cluster, targetType=TARGET, maxResults=2)
    keys = [(a["targetId"], a["name"]) for a in listed]
    assert len(keys) == len(set(keys))
    assert {f"pg{i}" for i in range(5)} <= {name for _, name in keys}
