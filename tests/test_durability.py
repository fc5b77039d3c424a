"""Durability: objects whose writes were acknowledged survive SIGKILL of the server.

Each test writes 500 objects through boto3 (every one acknowledged with a 200), kills the
server with SIGKILL right after the last acknowledgement, restarts it on the same data dir and
finds all 500."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness import start_berth, stop_berth
from helpers import WEB, all_pages, cluster_arn, task_definition_arn

OBJECTS = 500
THREADS = 4


def write_then_kill(data_dir: Path, write_one, count: int) -> list:
    """Runs write_one(client, i) for i < count over a few threads, then SIGKILLs the server."""
    berth = start_berth(data_dir)
    try:
        clients = [berth.new_client() for _ in range(THREADS)]

        def batch(k):
            return [write_one(clients[k], i) for i in range(k, count, THREADS)]

        with ThreadPoolExecutor(THREADS) as pool:
            acknowledged = [x for part in pool.map(batch, range(THREADS)) for x in part]
        assert berth.server.alive(), "the server died while writing"
    finally:
        berth.server.kill()
        berth.proxy.stop()
    assert len(acknowledged) == count
    return acknowledged


def test_500_acknowledged_clusters_survive_sigkill(tmp_path):
    data = tmp_path / "data"

    def create(client, i):
        name = f"durable-{i:03d}"
        out = client.create_cluster(clusterName=name, tags=[{"key": "i", "value": str(i)}])
        assert out["ResponseMetadata"]["HTTPStatusCode"] == 200
        return name

    names = write_then_kill(data, create, OBJECTS)
    berth = start_berth(data)
    try:
        listed = set(all_pages(berth.ecs.list_clusters, "clusterArns"))
        lost = sorted(n for n in names if cluster_arn(n) not in listed)
        assert not lost, f"{len(lost)} acknowledged clusters lost after SIGKILL: {lost[:10]}"
        for start in range(0, OBJECTS, 100):
            chunk = sorted(names)[start : start + 100]
            out = berth.ecs.describe_clusters(clusters=chunk, include=["TAGS"])
            assert out["failures"] == []
            for cluster in out["clusters"]:
                assert cluster["status"] == "ACTIVE"
                assert cluster["tags"] == [{"key": "i", "value": str(int(cluster["clusterName"][-3:]))}]
    finally:
        stop_berth(berth)


def test_500_acknowledged_task_definition_revisions_survive_sigkill(tmp_path):
    data = tmp_path / "data"
    families = [f"durable-{f:02d}" for f in range(25)]

    def register(client, i):
        family = families[i % len(families)]
        td = client.register_task_definition(family=family, containerDefinitions=WEB)["taskDefinition"]
        return td["taskDefinitionArn"]

    arns = write_then_kill(data, register, OBJECTS)
    assert len(set(arns)) == OBJECTS, "two acknowledged registrations share a revision"
    berth = start_berth(data)
    try:
        listed = set(all_pages(berth.ecs.list_task_definitions, "taskDefinitionArns"))
        lost = sorted(set(arns) - listed)
        assert not lost, f"{len(lost)} acknowledged revisions lost after SIGKILL: {lost[:10]}"
        per_family = OBJECTS // len(families)
        for family in families:
            assert berth.ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["revision"] == per_family
            # The revision counter survived too: the next registration does not reuse a number.
            again = berth.ecs.register_task_definition(family=family, containerDefinitions=WEB)["taskDefinition"]
            assert again["taskDefinitionArn"] == task_definition_arn(family, per_family + 1)
    finally:
        stop_berth(berth)
