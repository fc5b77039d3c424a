"""Concurrent writers to one object through boto3: nothing is lost, nothing is duplicated."""

from concurrent.futures import ThreadPoolExecutor

from helpers import WEB, all_pages, cluster_arn, task_definition_arn

THREADS = 8
PER_THREAD = 5


def test_racing_registrations_of_one_family_get_distinct_revisions_and_none_is_lost(berth, unique):
    family = unique("race")
    clients = [berth.new_client() for _ in range(THREADS)]

    def register_many(client):
        return [
            client.register_task_definition(family=family, containerDefinitions=WEB)["taskDefinition"]["revision"]
            for _ in range(PER_THREAD)
        ]

    with ThreadPoolExecutor(THREADS) as pool:
        revisions = [r for batch in pool.map(register_many, clients) for r in batch]
    total = THREADS * PER_THREAD
    assert sorted(revisions) == list(range(1, total + 1)), f"duplicates or gaps: {sorted(revisions)}"
    listed = all_pages(berth.ecs.list_task_definitions, "taskDefinitionArns", familyPrefix=family)
    assert listed == [task_definition_arn(family, r) for r in range(1, total + 1)]
    latest = berth.ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    assert latest["revision"] == total


def test_racing_creates_of_one_cluster_all_return_it_and_make_one(berth, unique):
    name = unique("samecluster")
    clients = [berth.new_client() for _ in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as pool:
        arns = list(pool.map(lambda c: c.create_cluster(clusterName=name)["cluster"]["clusterArn"], clients))
    assert set(arns) == {cluster_arn(name)}
    assert all_pages(berth.ecs.list_clusters, "clusterArns").count(cluster_arn(name)) == 1


def test_racing_tag_writes_to_one_cluster_keep_every_tag(berth, unique):
    name = unique("tagrace")
    berth.ecs.create_cluster(clusterName=name)
    clients = [berth.new_client() for _ in range(THREADS)]

    def tag(indexed):
        i, client = indexed
        for j in range(4):
            client.tag_resource(resourceArn=cluster_arn(name), tags=[{"key": f"t{i}-{j}", "value": str(j)}])

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(tag, enumerate(clients)))
    keys = {t["key"] for t in berth.ecs.list_tags_for_resource(resourceArn=cluster_arn(name))["tags"]}
    assert keys == {f"t{i}-{j}" for i in range(THREADS) for j in range(4)}
