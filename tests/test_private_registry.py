"""Issue 13's private registries on real containers: Debian's `docker-registry` on loopback
with htpasswd auth, an image pushed to it, and real `berth agent` processes. An agent without
credentials cannot pull it (the task stops with CannotPullContainerError); one given a Docker
config.json (`--registry-auth`, as ECS's ECS_ENGINE_AUTH_TYPE=dockercfg) runs it; and under
the default pull behavior a re-pushed tag is pulled again (the task reports the new digest)."""

from __future__ import annotations

import base64
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from fault_helpers import FaultCluster
from harness import docker, free_port, wait_until
from leaks import remember

USER, PASSWORD = "berth", remember(f"registry-{uuid.uuid4().hex}")


class Registry:
    """docker-registry on 127.0.0.1:PORT with basic auth; pushes with its own docker config."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.docker_config = base / "docker-config"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> "Registry":
        htpasswd = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], capture_output=True, text=True, check=True).stdout
        (self.base / "htpasswd").write_text(htpasswd)
        (self.base / "config.yml").write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.base / 'data'}\n"
            f"http:\n  addr: {self.host}\n"
            f"auth:\n  htpasswd:\n    realm: berth\n    path: {self.base / 'htpasswd'}\n"
        )
        log = open(self.base / "registry.log", "ab")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(self.base / "config.yml")], stdout=log, stderr=log)
        wait_until(self.answers, 20, "docker-registry to answer", diagnose=lambda: (self.base / "registry.log").read_text())
        self.docker_config.mkdir()
        subprocess.run(
            ["docker", "--config", str(self.docker_config), "login", self.host, "-u", USER, "--password-stdin"],
            input=PASSWORD,
            text=True,
            check=True,
            capture_output=True,
        )
        return self

    def answers(self) -> bool:
        import urllib.error
        import urllib.request

        try:
            urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
        except urllib.error.HTTPError as e:
            return e.code == 401
        except OSError:
            return False
        return False

    def push(self, source: str, reference: str) -> None:
        """Pushes local image `source` as `reference`, then removes the local tag so that only
        the registry has it."""
        docker("tag", source, reference)
        subprocess.run(["docker", "--config", str(self.docker_config), "push", reference], check=True, capture_output=True)
        docker("rmi", reference)

    def auth_file(self) -> Path:
        path = self.base / "auth.json"
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        path.write_text(json.dumps({"auths": {self.host: {"auth": token}}}))
        return path

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=15)


@pytest.fixture(scope="module")
def registry(docker_ready: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    running = Registry(tmp_path_factory.mktemp("registry")).start()
    try:
        yield running
    finally:
        running.stop()


def run_until_settled(cluster: FaultCluster, image: str, family: str) -> dict:
    cluster.ecs.register_task_definition(
        family=family,
        containerDefinitions=[{"name": "app", "image": image, "memory": 16, "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}],
    )
    arn = cluster.ecs.run_task(cluster=cluster.name, taskDefinition=family)["tasks"][0]["taskArn"]

    def settled() -> dict | None:
        task = cluster.ecs.describe_tasks(cluster=cluster.name, tasks=[arn])["tasks"][0]
        return task if task["lastStatus"] in ("RUNNING", "STOPPED") else None

    return wait_until(settled, 90, "the task to run or stop", diagnose=cluster.logs)


def test_a_private_image_needs_the_registrys_credentials_and_a_repushed_tag_is_pulled_again(
    registry: Registry, tmp_path: Path, unique
):
    image = f"{registry.host}/team/app:1"
    registry.push("busybox:latest", image)

    (tmp_path / "without").mkdir()
    (tmp_path / "with").mkdir()
    without = FaultCluster(tmp_path / "without", unique("noauth"), agents=1).start()
    try:
        task = run_until_settled(without, image, unique("private"))
        assert task["lastStatus"] == "STOPPED", task
        reason = task["containers"][0]["reason"]
        assert reason.startswith("CannotPullContainerError"), reason
        assert "no basic auth credentials" in reason or "unauthorized" in reason.lower(), reason
    finally:
        without.close()

    with_auth = FaultCluster(tmp_path / "with", unique("auth"), agents=0).start()
    try:
        from fault_helpers import FaultAgent

        agent = FaultAgent(
            with_auth.server,
            with_auth.name,
            tmp_path / "with" / "agent-0",
            extra_args=["--task-cleanup-wait", "30s", "--registry-auth", str(registry.auth_file())],
        )
        with_auth.agents.append(agent)
        agent.start()
        with_auth.wait_connected(1, 30)
        first = run_until_settled(with_auth, image, unique("private"))
        assert first["lastStatus"] == "RUNNING", first
        first_digest = first["containers"][0]["imageDigest"]
        assert first_digest.startswith("sha256:"), first

        # A new image under the same tag: the default pull behavior pulls it again.
        marker = unique("v2")
        docker("run", "--name", marker, "busybox:latest", "touch", "/v2")
        docker("commit", marker, f"berth-test/{marker}:latest")
        docker("rm", marker)
        registry.push(f"berth-test/{marker}:latest", image)
        docker("rmi", f"berth-test/{marker}:latest")
        second = run_until_settled(with_auth, image, unique("private"))
        assert second["lastStatus"] == "RUNNING", second
        assert second["containers"][0]["imageDigest"] != first_digest, (first_digest, second["containers"][0])
        container = second["containers"][0]["runtimeId"]
        assert subprocess.run(["docker", "exec", container, "test", "-e", "/v2"]).returncode == 0
    finally:
        with_auth.close()
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)


def test_repository_credentials_from_secrets_manager_pull_a_private_image(registry: Registry, tmp_path: Path, unique):
    from harness import boto3_client
    from iam_helpers import allow, document, iam

    image = f"{registry.host}/team/creds:1"
    registry.push("busybox:latest", image)
    cluster = FaultCluster(tmp_path, unique("repocreds"), agents=1).start()
    try:
        server = cluster.server
        secret = boto3_client(server.url, server.credentials, service="secretsmanager").create_secret(
            Name=unique("registry"), SecretString=json.dumps({"username": USER, "password": PASSWORD})
        )
        role = unique("exec")
        trust = document({"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"})
        role_arn = iam(server).create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        iam(server).put_role_policy(RoleName=role, PolicyName="pull", PolicyDocument=document(allow("secretsmanager:GetSecretValue", secret["ARN"])))
        family = unique("creds")
        cluster.ecs.register_task_definition(
            family=family,
            executionRoleArn=role_arn,
            containerDefinitions=[
                {
                    "name": "app",
                    "image": image,
                    "memory": 16,
                    "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"],
                    "repositoryCredentials": {"credentialsParameter": secret["ARN"]},
                }
            ],
        )
        arn = cluster.ecs.run_task(cluster=cluster.name, taskDefinition=family)["tasks"][0]["taskArn"]

        def settled() -> dict | None:
            task = cluster.ecs.describe_tasks(cluster=cluster.name, tasks=[arn])["tasks"][0]
            return task if task["lastStatus"] in ("RUNNING", "STOPPED") else None

        task = wait_until(settled, 90, "the task to run or stop", diagnose=cluster.logs)
        assert task["lastStatus"] == "RUNNING", task
        assert task["containers"][0]["imageDigest"].startswith("sha256:")
    finally:
        cluster.close()
        subprocess.run(["docker", "rmi", "-f", image], capture_output=True)
