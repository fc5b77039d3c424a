"""Clusters through boto3: CreateCluster, DescribeClusters, ListClusters, UpdateCluster,
UpdateClusterSettings and DeleteCluster, with ECS's semantics and error codes."""

import pytest

from helpers import (
    absent_or_empty,
    all_pages,
    cluster_arn,
    expect_error,
    instance_id,
    register_instance,
)


def settings_of(cluster: dict) -> dict:
    return {s["name"]: s["value"] for s in cluster.get("settings", [])}


def test_create_cluster_returns_an_active_cluster_with_its_arn_and_zero_counts(ecs, unique):
    name = unique("alpha")
    cluster = ecs.create_cluster(clusterName=name)["cluster"]
    assert cluster["clusterName"] == name
    assert cluster["clusterArn"] == cluster_arn(name)
    assert cluster["status"] == "ACTIVE"
    for count in ("registeredContainerInstancesCount", "runningTasksCount", "pendingTasksCount", "activeServicesCount"):
        assert cluster[count] == 0, count


def test_create_cluster_without_a_name_creates_the_default_cluster(ecs):
    cluster = ecs.create_cluster()["cluster"]
    assert cluster["clusterName"] == "default"
    assert cluster["clusterArn"] == cluster_arn("default")
    described = ecs.describe_clusters()
    assert [c["clusterName"] for c in described["clusters"]] == ["default"]


def test_create_cluster_twice_with_one_name_returns_the_same_cluster(ecs, unique):
    name = unique("twice")
    first = ecs.create_cluster(clusterName=name)["cluster"]
    second = ecs.create_cluster(clusterName=name)["cluster"]
    assert first["clusterArn"] == second["clusterArn"]
    assert second["status"] == "ACTIVE"
    arns = all_pages(ecs.list_clusters, "clusterArns")
    assert arns.count(cluster_arn(name)) == 1


@pytest.mark.parametrize("name", ["has space", "dot.name", "slash/name", "x" * 256, "ünïcode", "semi;colon"])
def test_create_cluster_rejects_names_outside_the_ecs_pattern(ecs, name):
    error = expect_error("InvalidParameterException", ecs.create_cluster, clusterName=name)
    assert "name" in error.response["Error"]["Message"].lower()
    assert cluster_arn(name) not in all_pages(ecs.list_clusters, "clusterArns")


def test_create_cluster_accepts_a_255_character_name(ecs, unique):
    name = unique("n").ljust(255, "x")
    assert ecs.create_cluster(clusterName=name)["cluster"]["clusterName"] == name


def test_create_cluster_keeps_tags_and_settings(ecs, unique):
    name = unique("tagged")
    tags = [{"key": "team", "value": "platform"}, {"key": "env", "value": "test"}]
    created = ecs.create_cluster(
        clusterName=name, tags=tags, settings=[{"name": "containerInsights", "value": "enabled"}]
    )["cluster"]
    assert settings_of(created)["containerInsights"] == "enabled"
    described = ecs.describe_clusters(clusters=[name], include=["TAGS", "SETTINGS"])["clusters"][0]
    assert sorted(described["tags"], key=lambda t: t["key"]) == sorted(tags, key=lambda t: t["key"])
    assert settings_of(described)["containerInsights"] == "enabled"


def test_create_cluster_rejects_reserved_tags_and_unknown_settings(ecs, unique):
    expect_error(
        "InvalidParameterException",
        ecs.create_cluster,
        clusterName=unique("badtag"),
        tags=[{"key": "aws:reserved", "value": "x"}],
    )
    expect_error(
        "InvalidParameterException",
        ecs.create_cluster,
        clusterName=unique("badsetting"),
        settings=[{"name": "containerInsights", "value": "sometimes"}],
    )
    listed = all_pages(ecs.list_clusters, "clusterArns")
    assert cluster_arn(unique("badtag")) not in listed
    assert cluster_arn(unique("badsetting")) not in listed


def test_describe_clusters_reports_unknown_clusters_as_missing_failures(ecs, unique):
    name = unique("known")
    ecs.create_cluster(clusterName=name)
    out = ecs.describe_clusters(clusters=[name, unique("unknown"), cluster_arn(unique("other"))])
    assert [c["clusterName"] for c in out["clusters"]] == [name]
    assert out["failures"] == [
        {"arn": cluster_arn(unique("unknown")), "reason": "MISSING"},
        {"arn": cluster_arn(unique("other")), "reason": "MISSING"},
    ]


def test_describe_clusters_accepts_cluster_arns(ecs, unique):
    name = unique("byarn")
    ecs.create_cluster(clusterName=name)
    out = ecs.describe_clusters(clusters=[cluster_arn(name)])
    assert [c["clusterArn"] for c in out["clusters"]] == [cluster_arn(name)]
    assert out["failures"] == []


def test_describe_clusters_without_include_leaves_out_tags_settings_and_statistics(ecs, unique):
    name = unique("plain")
    ecs.create_cluster(clusterName=name, tags=[{"key": "k", "value": "v"}])
    cluster = ecs.describe_clusters(clusters=[name])["clusters"][0]
    assert absent_or_empty(cluster, "tags")
    assert absent_or_empty(cluster, "settings")
    assert absent_or_empty(cluster, "statistics")


def test_describe_clusters_include_returns_settings_statistics_and_tags(ecs, unique):
    name = unique("full")
    ecs.create_cluster(clusterName=name, tags=[{"key": "k", "value": "v"}])
    cluster = ecs.describe_clusters(clusters=[name], include=["SETTINGS", "STATISTICS", "TAGS"])["clusters"][0]
    assert cluster["tags"] == [{"key": "k", "value": "v"}]
    assert settings_of(cluster) == {"containerInsights": "disabled"}
    statistics = {s["name"]: s["value"] for s in cluster["statistics"]}
    assert statistics["runningEC2TasksCount"] == "0"
    assert statistics["pendingEC2TasksCount"] == "0"
    only_stats = ecs.describe_clusters(clusters=[name], include=["STATISTICS"])["clusters"][0]
    assert only_stats["statistics"] and absent_or_empty(only_stats, "tags")


def test_describe_clusters_rejects_an_unknown_include_value(ecs, unique):
    name = unique("inc")
    ecs.create_cluster(clusterName=name)
    expect_error("InvalidParameterException", ecs.describe_clusters, clusters=[name], include=["EVERYTHING"])


def test_list_clusters_pages_through_every_cluster_exactly_once(ecs, unique):
    names = [unique(f"page{i}") for i in range(7)]
    for name in names:
        ecs.create_cluster(clusterName=name)
    arns = all_pages(ecs.list_clusters, "clusterArns", maxResults=3)
    assert len(arns) == len(set(arns))
    for name in names:
        assert cluster_arn(name) in arns
    first = ecs.list_clusters(maxResults=3)
    assert len(first["clusterArns"]) == 3 and first["nextToken"]


def test_list_clusters_pages_with_the_boto3_paginator(ecs, unique):
    names = {cluster_arn(unique(f"pgn{i}")) for i in range(5)}
    for arn in names:
        ecs.create_cluster(clusterName=arn.rsplit("/", 1)[1])
    pages = list(ecs.get_paginator("list_clusters").paginate(PaginationConfig={"PageSize": 2}))
    arns = [a for page in pages for a in page["clusterArns"]]
    assert names <= set(arns) and len(arns) == len(set(arns)) and len(pages) >= 3


@pytest.mark.parametrize("max_results", [0, -1, 101])
def test_list_clusters_rejects_max_results_outside_1_to_100(ecs, max_results):
    expect_error("InvalidParameterException", ecs.list_clusters, maxResults=max_results)


def test_list_clusters_rejects_a_next_token_it_did_not_issue(ecs):
    expect_error(("InvalidParameterException", "ClientException"), ecs.list_clusters, nextToken="not a token!")


def test_update_cluster_settings_turns_container_insights_on(ecs, unique):
    name = unique("insights")
    ecs.create_cluster(clusterName=name)
    out = ecs.update_cluster_settings(cluster=name, settings=[{"name": "containerInsights", "value": "enabled"}])
    assert settings_of(out["cluster"])["containerInsights"] == "enabled"
    described = ecs.describe_clusters(clusters=[name], include=["SETTINGS"])["clusters"][0]
    assert settings_of(described)["containerInsights"] == "enabled"


def test_update_cluster_changes_settings_and_execute_command_configuration(ecs, unique):
    name = unique("upd")
    ecs.create_cluster(clusterName=name)
    configuration = {"executeCommandConfiguration": {"logging": "NONE"}}
    out = ecs.update_cluster(
        cluster=cluster_arn(name),
        settings=[{"name": "containerInsights", "value": "enhanced"}],
        configuration=configuration,
    )["cluster"]
    assert out["clusterArn"] == cluster_arn(name)
    assert settings_of(out)["containerInsights"] == "enhanced"
    assert out["configuration"] == configuration
    described = ecs.describe_clusters(clusters=[name], include=["CONFIGURATIONS", "SETTINGS"])["clusters"][0]
    assert described["configuration"] == configuration
    assert settings_of(described)["containerInsights"] == "enhanced"


def test_update_operations_on_an_unknown_cluster_raise_cluster_not_found(ecs, unique):
    missing = unique("ghost")
    insights = [{"name": "containerInsights", "value": "enabled"}]
    expect_error("ClusterNotFoundException", ecs.update_cluster, cluster=missing, settings=insights)
    expect_error("ClusterNotFoundException", ecs.update_cluster_settings, cluster=missing, settings=insights)
    expect_error("ClusterNotFoundException", ecs.delete_cluster, cluster=missing)


def test_delete_cluster_makes_it_inactive_and_unlisted(ecs, unique):
    name = unique("doomed")
    ecs.create_cluster(clusterName=name)
    deleted = ecs.delete_cluster(cluster=name)["cluster"]
    assert deleted["status"] == "INACTIVE"
    assert deleted["clusterArn"] == cluster_arn(name)
    assert cluster_arn(name) not in all_pages(ecs.list_clusters, "clusterArns")
    described = ecs.describe_clusters(clusters=[name])
    # ECS keeps INACTIVE clusters discoverable for a while, or reports them MISSING.
    if described["clusters"]:
        assert described["clusters"][0]["status"] == "INACTIVE"
    else:
        assert described["failures"] == [{"arn": cluster_arn(name), "reason": "MISSING"}]
    expect_error("ClusterNotFoundException", ecs.delete_cluster, cluster=name)
    expect_error(
        "ClusterNotFoundException",
        ecs.update_cluster_settings,
        cluster=name,
        settings=[{"name": "containerInsights", "value": "enabled"}],
    )


def test_a_deleted_cluster_can_be_created_again(ecs, unique):
    name = unique("phoenix")
    ecs.create_cluster(clusterName=name)
    ecs.delete_cluster(cluster=cluster_arn(name))
    again = ecs.create_cluster(clusterName=name)["cluster"]
    assert again["status"] == "ACTIVE"
    assert cluster_arn(name) in all_pages(ecs.list_clusters, "clusterArns")


def test_delete_cluster_is_refused_while_a_container_instance_is_registered(ecs, unique):
    name = unique("busy")
    ecs.create_cluster(clusterName=name)
    instance = register_instance(ecs, name)
    counted = ecs.describe_clusters(clusters=[name])["clusters"][0]
    assert counted["registeredContainerInstancesCount"] == 1
    expect_error("ClusterContainsContainerInstancesException", ecs.delete_cluster, cluster=name)
    still = ecs.describe_clusters(clusters=[name])["clusters"][0]
    assert still["status"] == "ACTIVE"
    ecs.deregister_container_instance(cluster=name, containerInstance=instance_id(instance["containerInstanceArn"]))
    assert ecs.describe_clusters(clusters=[name])["clusters"][0]["registeredContainerInstancesCount"] == 0
    assert ecs.delete_cluster(cluster=name)["cluster"]["status"] == "INACTIVE"


def test_service_connect_defaults_use_a_namespace_or_create_an_http_one(berth, ecs, unique):
    """As ECS documents `serviceConnectDefaults.namespace`: a new name creates an HTTP Cloud Map
    namespace of that name, an existing name or ARN is used as it is, the cluster shows the
    namespace's ARN, "" removes the defaults (the namespace stays), and an ARN naming no
    namespace is NamespaceNotFoundException."""
    from harness import boto3_client

    sd = boto3_client(berth.endpoint, berth.credentials, service="servicediscovery", inject_host_prefix=False)
    fresh = unique("sc-new")
    cluster = ecs.create_cluster(clusterName=unique("sc"), serviceConnectDefaults={"namespace": fresh})["cluster"]
    arn = cluster["serviceConnectDefaults"]["namespace"]
    created = [n for n in sd.list_namespaces()["Namespaces"] if n["Name"] == fresh]
    assert [n["Arn"] for n in created] == [arn]
    assert created[0]["Type"] == "HTTP"
    described = ecs.describe_clusters(clusters=[cluster["clusterArn"]])["clusters"][0]
    assert described["serviceConnectDefaults"] == {"namespace": arn}

    # The same name again, from another cluster: the same namespace, no second one.
    other = ecs.create_cluster(clusterName=unique("sc2"), serviceConnectDefaults={"namespace": fresh})["cluster"]
    assert other["serviceConnectDefaults"]["namespace"] == arn
    assert len([n for n in sd.list_namespaces()["Namespaces"] if n["Name"] == fresh]) == 1

    # By ARN on UpdateCluster, then removed with "" (the namespace stays in Cloud Map).
    updated = ecs.update_cluster(cluster=other["clusterArn"], serviceConnectDefaults={"namespace": arn})["cluster"]
    assert updated["serviceConnectDefaults"]["namespace"] == arn
    cleared = ecs.update_cluster(cluster=other["clusterArn"], serviceConnectDefaults={"namespace": ""})["cluster"]
    assert "serviceConnectDefaults" not in cleared
    assert sd.get_namespace(Id=arn.rsplit("/", 1)[1])["Namespace"]["Arn"] == arn

    missing = "arn:aws:servicediscovery:us-east-1:000000000000:namespace/ns-doesnotexist00"
    expect_error("NamespaceNotFoundException", ecs.create_cluster, clusterName=unique("sc3"),
                 serviceConnectDefaults={"namespace": missing})
    expect_error("InvalidParameterException", ecs.create_cluster, clusterName=unique("sc4"),
                 serviceConnectDefaults={"namespace": "has/slash"})
    expect_error("ClusterNotFoundException", ecs.update_cluster, cluster=unique("nope"),
                 serviceConnectDefaults={"namespace": unique("never")})
    assert not [n for n in sd.list_namespaces()["Namespaces"] if n["Name"].startswith("never")]
