"""`berth store migrate` as an operator moves a single server to etcd: a server on SQLite
makes a cluster, a task definition, an IAM user and a secret; it stops; its store is copied
into a three-member etcd cluster, whose checksum matches; a server on that etcd with the same
data dir then has all of it, and answers the same root keys and the user's own."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from etcd_helpers import EtcdCluster
from harness import BerthServer, berth_bin, boto3_client, subprocess_env
from iam_helpers import allow, iam, make_user

LINE = re.compile(r"^(source|target|store) (\S+): keys=(\d+) bytes=(\d+) sha256=([0-9a-f]{64})$", re.M)


def berth_store(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(berth_bin()), "store", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(BERTH_LOG="warn"),
    )


def figures(output: str) -> dict[str, tuple[int, int, str]]:
    """`{label: (keys, bytes, sha256)}` of the checksum lines of `output`."""
    return {m[1]: (int(m[3]), int(m[4]), m[5]) for m in LINE.finditer(output)}


def test_a_sqlite_server_moves_to_etcd_with_everything_it_held(tmp_path: Path, unique) -> None:
    data = tmp_path / "data"
    cluster, family, user_name, secret = unique("moved"), unique("moved-web"), unique("moved-user"), unique("moved/secret")

    server = BerthServer(data).start()
    try:
        ecs = server.client()
        ecs.create_cluster(clusterName=cluster)
        container = {"name": "web", "image": "busybox", "memory": 64, "command": ["sleep", "60"]}
        registered = ecs.register_task_definition(family=family, containerDefinitions=[container])["taskDefinition"]
        user_keys = make_user(server, user_name, allow("ecs:ListClusters"))
        user = iam(server).get_user(UserName=user_name)["User"]
        sm = boto3_client(server.url, server.credentials, service="secretsmanager")
        sm.create_secret(Name=secret, SecretString="kept across the move")
        root = server.credentials
    finally:
        server.stop()

    with EtcdCluster(3, tmp_path / "etcd") as etcd:
        url = etcd.url("berth")
        migrated = berth_store("migrate", "--from", f"sqlite://{data}", "--to", url)
        assert migrated.returncode == 0, migrated.stderr
        seen = figures(migrated.stdout)
        assert set(seen) == {"source", "target"}, migrated.stdout
        assert seen["source"] == seen["target"], migrated.stdout
        assert seen["source"][0] > 0, migrated.stdout
        assert "checksums match" in migrated.stdout

        # The copy checks out on its own, and a second migration into it is refused.
        checked = berth_store("checksum", "--store", url)
        assert checked.returncode == 0, checked.stderr
        assert figures(checked.stdout)["store"] == seen["source"]
        again = berth_store("migrate", "--from", f"sqlite://{data}", "--to", url)
        assert again.returncode != 0 and "already holds" in again.stderr, again
        assert figures(berth_store("checksum", "--store", url).stdout)["store"] == seen["source"]

        moved = BerthServer(data, log_path=tmp_path / "moved.log", extra_args=["--store", url]).start()
        try:
            assert moved.credentials == root
            ecs = moved.client(root)
            clusters = ecs.describe_clusters(clusters=[cluster])
            assert [c["status"] for c in clusters["clusters"]] == ["ACTIVE"], clusters
            described = ecs.describe_task_definition(taskDefinition=f"{family}:1")["taskDefinition"]
            for field in ("taskDefinitionArn", "revision", "containerDefinitions", "status", "registeredAt"):
                assert described[field] == registered[field], field
            got = iam(moved, root).get_user(UserName=user_name)["User"]
            assert (got["UserId"], got["Arn"], got["CreateDate"]) == (user["UserId"], user["Arn"], user["CreateDate"])
            listed = moved.client(user_keys).list_clusters()["clusterArns"]
            assert clusters["clusters"][0]["clusterArn"] in listed
            sm = boto3_client(moved.url, root, service="secretsmanager")
            assert sm.get_secret_value(SecretId=secret)["SecretString"] == "kept across the move"
        finally:
            moved.stop()
